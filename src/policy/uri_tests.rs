use super::spellings;

/// Whether `spelling` may name `uri` for some lenient backend.
fn names(spelling: &str, uri: &str) -> bool {
    spelling == uri || spellings(spelling).iter().any(|s| s == uri)
}

#[test]
fn lenient_spellings_resolve_to_the_uri_they_may_name() {
    for spelling in [
        "mock://B/%73ecret",
        "mock://B/secret#x",
        "mock://B/secret?",
        "mock://B/secret%00.txt",
        "mock://B/secret/.",
        "mock://B/./secret",
        "mock://B/x/../secret",
        "mock://B//secret",
        "mock://B:80/secret",
        "mock://B:/secret",
        r"mock://B\secret",
        "mock://B/%2e%2e/x/../secret",
    ] {
        assert!(names(spelling, "mock://B/secret"), "{spelling}: {:?}", spellings(spelling));
    }
    assert!(spellings("mock://B/secret").is_empty());
    assert!(names("urn:x:%79", "urn:x:y"));
    assert!(spellings("b+secret://1").is_empty());
    assert!(names("docs/./a", "docs/a"));
    assert!(names(r"a\b:c/./d", "a/b:c/d"), "no scheme: all of it is path");
}

#[test]
fn control_characters_and_spaces_are_stripped_and_a_nul_also_ends_the_uri() {
    for spelling in [
        "mock://B/sec\tret",
        "mock://B/sec\nret",
        "mock://B/\tsecret",
        "mock://B/secret\t",
        "mock://B/secret\r\n",
        "mock://B/secret ",
        " mock://B/secret",
        "mock://B/secret\u{1}",
        "mock://B/secret\u{1f}",
        "mo\tck://B/secret",
        "mock:\t//B/secret",
        "mock://\tB/secret",
        "mock://B\t/secret",
        "mock://B/secret\0.txt",
        "mock://B/secret\u{A0}",
        "\u{2028}mock://B/secret",
        "mock://B/secret\u{3000}",
        "\u{FEFF}mock://B/secret",
        "mock://B/secret\u{85}",
        "mock://B/secret\u{1680}",
        "mock://B/sec\u{200B}ret",
    ] {
        assert!(names(spelling, "mock://B/secret"), "{spelling:?}: {:?}", spellings(spelling));
    }
    assert!(names("mock://B/sec\0ret", "mock://B/sec"), "cut at the NUL");
    assert!(names("mock://B/sec\0ret", "mock://B/secret"), "or the NUL stripped");
}

#[test]
fn a_federated_uri_is_spelled_as_its_member_parses_the_part_after_the_prefix() {
    for spelling in ["b+ mock://B/secret", "b+\tmock://B/secret", "b+mo\tck://B/secret", "b+mock://B:/secret"] {
        assert!(names(spelling, "b+mock://B/secret"), "{spelling:?}: {:?}", spellings(spelling));
    }
    assert!(names("b+se\tcret://1", "b+secret://1"));
    for spelling in ["b+http:internal.example/x", "b+http:/internal.example/x", "b+HTTP://u:p@INTERNAL.example:80/x"] {
        assert!(names(spelling, "b+http://internal.example/x"), "{spelling}: {:?}", spellings(spelling));
    }
}

#[test]
fn what_a_whatwg_parser_rewrites_is_spelled_as_it_rewrites_it() {
    for spelling in [
        "http:internal.example/x",
        "http:/internal.example/x",
        "http:///internal.example/x",
        "http://internal.example:/x",
        "http://u:p@internal.example/x",
        "http://ｉｎｔｅｒｎａｌ.example/x",
        "http://internal。example/x",
        "http://internal.e\u{ad}xample/x",
        "http://inte\trnal.example/x",
        "HTTP://Internal.Example:80/x",
    ] {
        assert!(names(spelling, "http://internal.example/x"), "{spelling}: {:?}", spellings(spelling));
    }
    for spelling in
        ["file://localhost/etc/passwd", "file://LOCALHOST/etc/passwd", "file:/etc/passwd", "file:etc/passwd"]
    {
        assert!(names(spelling, "file:///etc/passwd"), "{spelling}: {:?}", spellings(spelling));
    }
}
