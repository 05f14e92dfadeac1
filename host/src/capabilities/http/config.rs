//! Host grants: `HOST[:PORT]`, optionally with a secret header read from the host's
//! environment (`HOST=HEADER:ENV_VAR`).

use http::{HeaderName, HeaderValue};

/// One host the guest may reach.
#[derive(Debug, Clone)]
pub struct HostGrant {
    /// Lower-case host name or IP address.
    pub host: String,
    /// The one port allowed; `None` allows the scheme's default port (80 or 443) only.
    pub port: Option<u16>,
    /// A header the host adds to every request to this host (e.g. `Authorization`).
    pub secret: Option<(HeaderName, HeaderValue)>,
}

/// A host grant that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostGrantError {
    /// Empty, contains a scheme or path, or has a bad port.
    #[error(
        "host grant {0:?} is not of the form HOST or HOST:PORT (no scheme, no path), e.g. api.example.com or 127.0.0.1:8080"
    )]
    Malformed(String),
    /// A secret for a host that is not granted.
    #[error("secret {0:?} names host {1:?}, which is not granted: add --allow-host {1}")]
    UngrantedSecret(String, String),
    /// Not `HOST=HEADER:ENV_VAR`.
    #[error(
        "secret {0:?} is not of the form HOST=HEADER:ENV_VAR, e.g. api.example.com=Authorization:API_TOKEN"
    )]
    MalformedSecret(String),
    /// The environment variable holding the secret is not set.
    #[error("secret {0:?}: environment variable {1} is not set")]
    MissingSecret(String, String),
    /// The header name or value is not valid HTTP.
    #[error("secret {0:?}: {1}")]
    InvalidHeader(String, String),
}

impl HostGrant {
    /// Parses `HOST` or `HOST:PORT`.
    pub fn parse(grant: &str) -> Result<Self, HostGrantError> {
        let malformed = || HostGrantError::Malformed(grant.to_string());
        if grant.is_empty() || grant.contains("://") || grant.contains('/') {
            return Err(malformed());
        }
        let authority: http::uri::Authority = grant.parse().map_err(|_| malformed())?;
        // `Authority` accepts any text after the colon; only a real port number may follow.
        let after_host = grant.strip_prefix(authority.host()).unwrap_or_default();
        if authority.as_str().contains('@')
            || (!after_host.is_empty() && authority.port_u16().is_none())
        {
            return Err(malformed());
        }
        Ok(Self {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
            secret: None,
        })
    }

    /// Whether a request to `host:port` (port already defaulted from the scheme) is allowed.
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        self.host.eq_ignore_ascii_case(host) && self.port.unwrap_or(default_port) == port
    }

    /// Attaches secrets given as `HOST=HEADER:ENV_VAR` to their grants, reading each value
    /// from the host's environment through `lookup` (so tests need not touch the real one).
    pub fn attach_secrets<'a>(
        grants: &mut [HostGrant],
        secrets: impl IntoIterator<Item = &'a str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), HostGrantError> {
        for secret in secrets {
            let bad = || HostGrantError::MalformedSecret(secret.to_string());
            let (host, rest) = secret.split_once('=').ok_or_else(bad)?;
            let (header, var) = rest.split_once(':').ok_or_else(bad)?;
            if host.is_empty() || header.is_empty() || var.is_empty() {
                return Err(bad());
            }
            let target = HostGrant::parse(host)?;
            let value = lookup(var)
                .ok_or_else(|| HostGrantError::MissingSecret(secret.into(), var.into()))?;
            let name = HeaderName::try_from(header).map_err(|e| {
                HostGrantError::InvalidHeader(secret.into(), format!("bad header name: {e}"))
            })?;
            let mut value = HeaderValue::try_from(value).map_err(|e| {
                HostGrantError::InvalidHeader(secret.into(), format!("bad value in {var}: {e}"))
            })?;
            value.set_sensitive(true);
            let grant = grants
                .iter_mut()
                .find(|g| g.host == target.host && g.port == target.port)
                .ok_or_else(|| HostGrantError::UngrantedSecret(secret.into(), host.into()))?;
            grant.secret = Some((name, value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_ports() {
        let g = HostGrant::parse("API.Example.com").unwrap();
        assert_eq!((g.host.as_str(), g.port), ("api.example.com", None));
        assert!(g.allows("api.example.com", 443, 443));
        assert!(!g.allows("api.example.com", 8443, 443));
        let g = HostGrant::parse("127.0.0.1:8080").unwrap();
        assert!(g.allows("127.0.0.1", 8080, 80));
        assert!(!g.allows("127.0.0.1", 80, 80));
        assert!(!g.allows("127.0.0.2", 8080, 80));
    }

    #[test]
    fn rejects_urls_and_userinfo() {
        for bad in [
            "",
            "https://api.example.com",
            "api.example.com/v1",
            "user@host",
            "host:notaport",
        ] {
            assert!(HostGrant::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn attaches_secrets_from_the_environment() {
        let mut grants = vec![HostGrant::parse("api.example.com").unwrap()];
        let env = |var: &str| (var == "TOKEN").then(|| "Bearer s3cret".to_string());
        HostGrant::attach_secrets(&mut grants, ["api.example.com=Authorization:TOKEN"], env)
            .unwrap();
        let (name, value) = grants[0].secret.clone().unwrap();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value, "Bearer s3cret");
        assert!(value.is_sensitive());

        let err =
            HostGrant::attach_secrets(&mut grants, ["api.example.com=Authorization:NOPE"], env)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"secret "api.example.com=Authorization:NOPE": environment variable NOPE is not set"#
        );
        let err = HostGrant::attach_secrets(&mut grants, ["other.com=Authorization:TOKEN"], env)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("which is not granted: add --allow-host other.com")
        );
    }
}
