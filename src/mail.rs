//! Delivering the digest: a plain-text UTF-8 RFC 5322 message (lettre builds and encodes the
//! headers, so log content can never add one), by SMTP to the local MTA (works inside a
//! hardened unit) or piped to a sendmail program (needs Postfix's setgid `postdrop`, which
//! `NoNewPrivileges=` forbids — see units/sendmail.conf).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::{Message, SendmailTransport, SmtpTransport, Transport as _};

/// Marks the digest as machine-made (RFC 3834), so vacation responders stay quiet.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), String::from("auto-generated"))
    }
}

pub struct Digest {
    /// `None`: `postgrey-advisor@<this host>`.
    pub from: Option<String>,
    pub to: String,
    pub subject: String,
    pub body: String,
}

pub enum Transport {
    /// `HOST[:PORT]`, plain SMTP (the local MTA).
    Smtp(String),
    Sendmail(PathBuf),
}

/// This machine's fully qualified name, as `hostname --fqdn` finds it: the canonical name the
/// resolver gives for the host name (usually from /etc/hosts), else the host name itself.
pub fn host_name() -> String {
    let short = gethostname::gethostname().to_string_lossy().into_owned();
    let hints = dns_lookup::AddrInfoHints {
        flags: nix::libc::AI_CANONNAME,
        socktype: nix::libc::SOCK_DGRAM,
        ..dns_lookup::AddrInfoHints::default()
    };
    // A resolver failure only means a less qualified name in the From header.
    let canonical = dns_lookup::getaddrinfo(Some(&short), None, Some(hints))
        .ok()
        .and_then(|mut results| results.find_map(|r| r.ok().and_then(|info| info.canonname)))
        .filter(|name| !name.is_empty());
    canonical.unwrap_or(short)
}

/// A bare local part (`postmaster`, `root`) is addressed at `localhost`: the local MTA
/// delivers it to the local user, as sendmail's default domain would.
fn mailbox(address: &str, what: &str) -> anyhow::Result<Mailbox> {
    let full = if address.contains('@') {
        address.to_owned()
    } else {
        format!("{address}@localhost")
    };
    full.parse()
        .with_context(|| format!("{what} address {address:?} is not a valid mail address"))
}

pub fn build(digest: &Digest) -> anyhow::Result<Message> {
    let from = match &digest.from {
        Some(f) => mailbox(f, "sender (--mail-from)")?,
        None => {
            let host = host_name();
            mailbox(
                &format!("postgrey-advisor@{host}"),
                &format!("default sender for host name {host:?} (set --mail-from)"),
            )?
        }
    };
    Message::builder()
        .from(from)
        .to(mailbox(&digest.to, "recipient (--mail)")?)
        .subject(digest.subject.as_str())
        .date_now()
        .message_id(None)
        .header(AutoSubmitted)
        // lettre adds MIME-Version only to MIME-part bodies; without it a client may ignore
        // the charset and the quoted-printable encoding of this plain body (RFC 2045).
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(digest.body.clone())
        .context("cannot build the digest message")
}

pub fn send(digest: &Digest, transport: &Transport) -> anyhow::Result<()> {
    let message = build(digest)?;
    match transport {
        Transport::Smtp(server) => {
            let (host, port) = match server.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                    let port = p
                        .parse::<u16>()
                        .with_context(|| format!("bad port in SMTP server {server:?}"))?;
                    (
                        h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                        port,
                    )
                }
                _ => (server.clone(), 25),
            };
            if host.is_empty() {
                bail!("SMTP server {server:?} has no host");
            }
            SmtpTransport::builder_dangerous(host.as_str())
                .port(port)
                .timeout(Some(Duration::from_secs(30)))
                .build()
                .send(&message)
                .with_context(|| format!("SMTP delivery to {server} failed"))?;
        }
        Transport::Sendmail(program) => {
            SendmailTransport::new_with_command(program.as_os_str())
                .send(&message)
                .with_context(|| format!("{} failed", program.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_is_impossible() {
        let digest = Digest {
            from: Some("advisor@example.org".into()),
            to: "root".into(),
            subject: "x\r\nBcc: victim@example.net".into(),
            body: "body\r\nline".into(),
        };
        let text = String::from_utf8(build(&digest).unwrap().formatted()).unwrap();
        let (headers, _) = text.split_once("\r\n\r\n").unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
        assert!(headers.contains("To: root@localhost"), "{headers}");
        assert!(
            headers.contains("Auto-Submitted: auto-generated"),
            "{headers}"
        );
        assert!(headers.contains("Message-ID: <"), "{headers}");
        assert!(headers.contains("MIME-Version: 1.0"), "{headers}");
    }
}
