//! Client certificate checks beyond what rustls's WebPKI verifier does, so that each
//! `client_auth_type` and `client_allowed_sans` of the web configuration mean what they mean to
//! Go's `crypto/tls` under exporter-toolkit: [`AnyClientCert`] takes any certificate unchecked
//! (Go's `RequestClientCert` and `RequireAnyClientCert`), and [`AllowedSans`] accepts a client
//! certificate only when one of its subject alternative names (DNS names, e-mail addresses, IP
//! addresses, URIs, written as Go writes them) equals an entry of the list, after the policy's
//! own check (chain verification for `VerifyClientCertIfGiven` and
//! `RequireAndVerifyClientCert`).
//!
//! Go calls the list's check whenever it asked for a certificate, given or not, and refuses
//! the connection when none was given; so a policy wrapped in [`AllowedSans`] makes a
//! certificate mandatory. With `NoClientCert` Go asks for none and checks nothing, and
//! [`super::web_config`] then does not wrap it.
//!
//! Owns the verifiers only; which one a file asks for is [`super::web_config`]'s business.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{Error, SignatureScheme};
use x509_parser::extensions::GeneralName;

/// Go's `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken without
/// checking who issued it; the client still proves it holds the certificate's key.
#[derive(Debug)]
pub struct AnyClientCert {
    /// Whether a client without a certificate is refused.
    pub mandatory: bool,
    /// The signature algorithms the client's proof may use.
    pub algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: the wrapped policy's check, then one of the certificate's subject
/// alternative names must be on the list (exactly, case and all, as Go compares them).
#[derive(Debug)]
pub struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    /// Wraps `inner` (the `client_auth_type`'s verifier) with the list `allowed`.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, allowed: Vec<String>) -> AllowedSans {
        AllowedSans { inner, allowed }
    }
}

/// A client certificate none of whose names is on the list; its names are not secret and
/// tell the operator what to add.
#[derive(Debug)]
struct NoAllowedSan {
    found: Vec<String>,
}

impl fmt::Display for NoAllowedSan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let mut names: Vec<&str> = self.found.iter().take(SHOWN).map(String::as_str).collect();
        if self.found.len() > SHOWN {
            names.push("...");
        }
        write!(
            f,
            "no subject alternative name of the client certificate is in client_allowed_sans (it has: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )
    }
}

impl std::error::Error for NoAllowedSan {}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Go runs the check whenever it asked for a certificate and fails without one.
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let found = subject_alt_names(end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if found.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(NoAllowedSan { found })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subject alternative names of a DER certificate, written as Go's `crypto/x509` gives
/// them: DNS names and e-mail addresses as they are, IP addresses in Go's `net.IP` text (an
/// IPv4-mapped IPv6 address as IPv4), URIs as written; other kinds of name are left out. None
/// when the certificate or its extension cannot be parsed (Go refuses such a certificate).
pub fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let Some(extension) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let mut names = Vec::new();
    for name in &extension.value.general_names {
        match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                names.push((*s).to_owned())
            }
            GeneralName::IPAddress(bytes) => names.push(go_ip_text(bytes)?),
            // Go fails to parse a certificate with a malformed name of these kinds.
            GeneralName::Invalid(..) => return None,
            _ => {}
        }
    }
    Some(names)
}

/// An IP address SAN as Go's `net.IP.String` writes it; None for a length Go refuses.
fn go_ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn cert_with(sans: Vec<SanType>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_of_every_kind_are_read_as_go_writes_them() {
        let der = cert_with(vec![
            SanType::DnsName("scraper.example.test".try_into().unwrap()),
            SanType::Rfc822Name("ops@example.test".try_into().unwrap()),
            SanType::IpAddress("192.0.2.7".parse().unwrap()),
            SanType::IpAddress("2001:db8:0:0:0:0:0:1".parse().unwrap()),
            SanType::IpAddress("::ffff:198.51.100.1".parse().unwrap()),
            SanType::URI("spiffe://example.test/scraper".try_into().unwrap()),
        ]);
        assert_eq!(
            subject_alt_names(&der).unwrap(),
            [
                "scraper.example.test",
                "ops@example.test",
                "192.0.2.7",
                "2001:db8::1",
                "198.51.100.1",
                "spiffe://example.test/scraper",
            ]
        );
        assert_eq!(
            subject_alt_names(&cert_with(vec![])).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(subject_alt_names(b"not a certificate"), None);
    }

    #[test]
    fn a_refusal_names_what_the_certificate_has() {
        let e = NoAllowedSan {
            found: vec!["a.test".into(), "192.0.2.1".into()],
        };
        assert!(
            e.to_string().ends_with("(it has: a.test, 192.0.2.1)"),
            "{e}"
        );
        let none = NoAllowedSan { found: vec![] };
        assert!(none.to_string().ends_with("(it has: none)"), "{none}");
    }
}
