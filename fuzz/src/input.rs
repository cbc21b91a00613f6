//! Reading structure out of fuzz bytes: front to back, and running out is never an error
//! (missing bytes read as zero or empty), so every input is some case and seeds stay easy to
//! write by hand.

pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes: fewer when the input ends first.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}
