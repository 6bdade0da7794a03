//! Delivering the digest: a plain-text UTF-8 RFC 5322 message (lettre builds and encodes the
//! headers, so log content can never add one), by SMTP to the local MTA (works inside a
//! hardened unit) or piped to a sendmail program (needs Postfix's setgid `postdrop`, which
//! `NoNewPrivileges=` forbids — see units/sendmail.conf).
//!
//! The body travels as `8bit` wherever it can, so that a plain terminal mail reader (bsd-mailx
//! shows the raw body) prints the sparkline and any UTF-8 as text: over SMTP when the server
//! offers 8BITMIME (RFC 6152; Postfix does), always to sendmail (local submission takes 8-bit
//! text). A server without 8BITMIME gets quoted-printable, the 7-bit form a MIME reader decodes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0,
};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::{Message, SendmailTransport, Transport as _};

/// How long one SMTP connection, command or reply may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

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

/// SMTP's limit on a line, CRLF excluded (RFC 5321 4.5.3.1.6).
const MAX_LINE_OCTETS: usize = 998;

/// The body's `Content-Transfer-Encoding`: `7bit` for ASCII and `8bit` for other text when the
/// receiver takes 8-bit text, as long as every line fits SMTP's 998 octets; quoted-printable
/// otherwise (never base64, which no one can read undecoded).
fn encoded_body(text: &str, eight_bit: bool) -> Body {
    let fits = text.lines().all(|line| line.len() <= MAX_LINE_OCTETS);
    let plain = match (text.is_ascii(), eight_bit) {
        (true, _) => Some(ContentTransferEncoding::SevenBit),
        (false, true) => Some(ContentTransferEncoding::EightBit),
        (false, false) => None,
    };
    if let (Some(encoding), true) = (plain, fits) {
        // lettre's own choice wants lines under 76 octets, the advice for encoded text, and
        // would quote-print a line of 80 columns (more octets still with the sparkline's
        // 3-octet characters). The body is given as sent: CRLF line ends; SMTP's dot-stuffing
        // is lettre's.
        let mut crlf = String::with_capacity(text.len() + text.len() / 40);
        for line in text.lines() {
            crlf.push_str(line);
            crlf.push_str("\r\n");
        }
        return Body::dangerous_pre_encoded(crlf.into_bytes(), encoding);
    }
    // Quoted-printable can carry any text.
    Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::QuotedPrintable)
        .unwrap_or_else(|_| Body::new(text.to_owned()))
}

/// The message; `eight_bit`: the receiver accepts 8-bit text (see [`encoded_body`]).
pub fn build(digest: &Digest, eight_bit: bool) -> anyhow::Result<Message> {
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
        // the charset and the transfer encoding of this plain body (RFC 2045).
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(encoded_body(&digest.body, eight_bit))
        .context("cannot build the digest message")
}

/// A lettre error in one line. Its `Display` already ends with its source (for sendmail: the
/// program's whole stderr), so the error chain must not repeat it; multi-line text becomes
/// `; `-separated, so that the journal shows one entry.
fn one_line(error: &dyn std::error::Error) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Delivers by SMTP: EHLO first, so that the body can be encoded for what the server offers.
fn send_smtp(digest: &Digest, host: &str, port: u16) -> Result<(), String> {
    let hello = ClientId::default();
    let mut connection =
        SmtpConnection::connect((host, port), Some(SMTP_TIMEOUT), &hello, None, None)
            .map_err(|e| one_line(&e))?;
    let eight_bit = connection
        .server_info()
        .supports_feature(Extension::EightBitMime);
    let message = build(digest, eight_bit).map_err(|e| format!("{e:#}"))?;
    let sent = connection.send(message.envelope(), &message.formatted());
    match sent {
        Ok(_) => {
            // The server has the message: a failed goodbye loses nothing.
            let _ = connection.quit();
            Ok(())
        }
        Err(e) => {
            connection.abort();
            Err(one_line(&e))
        }
    }
}

pub fn send(digest: &Digest, transport: &Transport) -> anyhow::Result<()> {
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
            send_smtp(digest, &host, port)
                .map_err(|e| anyhow!("SMTP delivery to {server} failed: {e}"))?;
        }
        Transport::Sendmail(program) => {
            let message = build(digest, true)?;
            SendmailTransport::new_with_command(program.as_os_str())
                .send(&message)
                .map_err(|e| anyhow!("{} failed: {}", program.display(), one_line(&e)))?;
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
        let text = String::from_utf8(build(&digest, false).unwrap().formatted()).unwrap();
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

    fn digest(body: &str) -> Digest {
        Digest {
            from: Some("advisor@example.org".into()),
            to: "root".into(),
            subject: "s".into(),
            body: body.into(),
        }
    }

    fn formatted(digest: &Digest, eight_bit: bool) -> String {
        String::from_utf8(build(digest, eight_bit).unwrap().formatted()).unwrap()
    }

    #[test]
    fn utf8_text_goes_8bit_when_the_receiver_takes_it_and_quoted_printable_otherwise() {
        let text = formatted(&digest("per day |▁█|\n"), true);
        assert!(
            text.contains("\r\nContent-Transfer-Encoding: 8bit\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nper day |▁█|\r\n"), "{text}");

        let text = formatted(&digest("per day |▁█|\n"), false);
        assert!(
            text.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\n\r\nper day |=E2=96=81=E2=96=88|\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_line_too_long_for_8bit_smtp_falls_back_to_quoted_printable() {
        let long = format!("█{}\n", "x".repeat(998));
        let text = formatted(&digest(&long), true);
        assert!(
            text.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n"),
            "{text}"
        );
    }

    #[test]
    fn an_80_column_line_of_sparkline_characters_stays_8bit() {
        let line = "█".repeat(80);
        let text = formatted(&digest(&format!("{line}\nnext\n")), true);
        assert!(
            text.contains("\r\nContent-Transfer-Encoding: 8bit\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with(&format!("\r\n\r\n{line}\r\nnext\r\n")),
            "{text}"
        );
    }

    #[test]
    fn ascii_text_stays_7bit_even_in_80_columns() {
        let line = "x".repeat(80);
        for eight_bit in [true, false] {
            let text = formatted(&digest(&format!("{line}\n-- \n")), eight_bit);
            assert!(
                text.contains("\r\nContent-Transfer-Encoding: 7bit\r\n"),
                "{text}"
            );
            assert!(
                text.ends_with(&format!("\r\n\r\n{line}\r\n-- \r\n")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_failed_sendmail_is_reported_once_on_one_line() {
        let program = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            program.path(),
            "#!/bin/sh\ncat >/dev/null\necho 'sendmail: fatal: no postdrop' >&2\nexit 75\n",
        )
        .unwrap();
        let path = program.into_temp_path();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let error = send(&digest("text\n"), &Transport::Sendmail(path.to_path_buf())).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "{} failed: internal client error: sendmail: fatal: no postdrop",
                path.display()
            )
        );
    }
}
