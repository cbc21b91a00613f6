//! Callers named by the client certificate a TLS listener verified (`kind = "client_cert"`,
//! with the listener's `client_ca_file`): the configured field of the certificate is the
//! identity's id, admitted when it matches one of `allow` (or any when none is listed), with
//! the authenticator's tenant, roles and scopes. The certificate was verified during the
//! handshake; here it is only read (`downstream::tls::peer`). Not owned here: verification.

use std::sync::Arc;

use super::identity::Identity;
use crate::config::model::{CertField, ClientCertSettings};
use crate::downstream::tls::PeerCert;

/// The identity `cert` names under `settings`; None when the field is absent or not allowed.
pub fn identity(settings: &ClientCertSettings, cert: &PeerCert) -> Option<Arc<Identity>> {
    let id = match settings.field {
        CertField::Cn => cert.cn.as_deref(),
        CertField::Uri => san(cert, "URI:"),
        CertField::Dns => san(cert, "DNS:"),
        CertField::Email => san(cert, "email:"),
    }
    .filter(|id| !id.is_empty())?;
    if !settings.allow.is_empty() && !settings.allow.iter().any(|g| g.is_match(id)) {
        return None;
    }
    Some(Arc::new(Identity {
        id: id.to_owned(),
        tenant: settings.tenant.clone(),
        roles: settings.roles.clone(),
        scopes: settings.scopes.clone(),
        claims: Vec::new(),
        token_exp: None,
    }))
}

/// The first subject alternative name of this kind.
fn san<'c>(cert: &'c PeerCert, kind: &str) -> Option<&'c str> {
    cert.sans.iter().find_map(|s| s.strip_prefix(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::Glob;

    fn cert() -> PeerCert {
        PeerCert {
            subject: "CN=agent-7,O=Acme".into(),
            cn: Some("agent-7".into()),
            sans: vec!["DNS:agent-7.acme.internal".into(), "URI:spiffe://acme.example/agent/7".into()],
        }
    }

    fn settings(field: CertField, allow: &[&str]) -> ClientCertSettings {
        ClientCertSettings {
            field,
            allow: allow.iter().map(|p| Glob::new(p)).collect(),
            tenant: Some("acme".into()),
            roles: vec!["agent".into()],
            scopes: vec![],
        }
    }

    #[test]
    fn the_configured_field_is_the_id_and_the_authenticator_grants_the_rest() {
        let id = identity(&settings(CertField::Uri, &["spiffe://acme.example/agent/*"]), &cert()).expect("admitted");
        assert_eq!(
            (id.id.as_str(), id.tenant.as_deref(), id.roles.as_slice()),
            ("spiffe://acme.example/agent/7", Some("acme"), &["agent".to_owned()][..])
        );
        assert_eq!(identity(&settings(CertField::Cn, &[]), &cert()).map(|i| i.id.clone()), Some("agent-7".into()));
        assert_eq!(
            identity(&settings(CertField::Dns, &[]), &cert()).map(|i| i.id.clone()),
            Some("agent-7.acme.internal".into())
        );
    }

    #[test]
    fn a_certificate_outside_allow_or_without_the_field_is_not_admitted() {
        assert!(identity(&settings(CertField::Uri, &["spiffe://other.example/*"]), &cert()).is_none());
        assert!(identity(&settings(CertField::Email, &[]), &cert()).is_none(), "no email SAN");
    }
}
