//! A stand-in for an SMTP relay in tests: it speaks RFC 5321 on `127.0.0.1:<ephemeral>` as far as a mail client such
//! as lettre goes, accepts every message and keeps it for the test to read. It delivers nothing and checks no
//! password.
//!
//! - Greets with `220`; `EHLO` answers a multi-line `250` advertising `8BITMIME`, `SMTPUTF8` and `AUTH PLAIN LOGIN`;
//!   `HELO` a single `250`.
//! - `AUTH PLAIN` (with or without an initial response) and `AUTH LOGIN` accept any credentials and remember the
//!   user name on the messages that follow.
//! - `MAIL FROM`, `RCPT TO`, `DATA` (`354`, read up to `<CRLF>.<CRLF>`, dot-stuffing undone), `RSET`, `NOOP`,
//!   `QUIT` (`221`); commands out of order get `503`, unknown ones `502`. No `STARTTLS`: tests use plain TCP.
//!
//! ```ignore
//! let sink = SmtpSink::start().await;
//! // ... point the mailer at 127.0.0.1:sink.port() and send ...
//! let mail = sink.wait_for("zoe@example.org", Duration::from_secs(5)).await;
//! assert!(mail.body_text().contains("/sign-in?token="));
//! ```
//!
//! Tests outside Rust (the console's browser tests) read the same messages over HTTP: [`SmtpSink::serve_http`]
//! answers `GET /messages?to=<address>` with a JSON array, oldest first, of
//! `{"from", "to": [...], "subject", "text"}` (`text` is the decoded body).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// One message as the relay received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`), without angle brackets; empty for the null sender `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets, in the order given.
    pub to: Vec<String>,
    /// The message (header and body) as the client wrote it: dot-stuffing undone and without the `<CRLF>.<CRLF>`
    /// that ended it.
    pub data: String,
    /// The user name the client authenticated as before sending, if it did.
    pub authenticated_as: Option<String>,
}

impl Mail {
    /// The value of the first header called `name` (any case), unfolded, or `None`. Encoded words are left as sent.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.split();
        let mut fields: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match fields.last_mut() {
                // A folded header continues on lines starting with white space (RFC 5322 section 2.2.3).
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => fields.push(line.to_owned()),
            }
        }
        fields.into_iter().find_map(|field| {
            let (field_name, value) = field.split_once(':')?;
            field_name.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    /// The `Subject` header, with RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) decoded.
    ///
    /// Panics when the message has no subject.
    pub fn subject(&self) -> String {
        let raw = self.header("Subject").expect("the message has no Subject header");
        decode_encoded_words(&raw)
    }

    /// The text of a single-part message, its `Content-Transfer-Encoding` (`7bit`, `8bit`, `binary`,
    /// `quoted-printable` or `base64`) undone and its line endings turned into `\n`.
    ///
    /// Panics on a multipart message, a charset other than UTF-8 or US-ASCII, or a body that does not decode.
    pub fn body_text(&self) -> String {
        let content_type = self.header("Content-Type").unwrap_or_else(|| "text/plain".to_owned());
        assert!(
            !content_type.to_ascii_lowercase().starts_with("multipart/"),
            "body_text reads single-part messages only; this one is {content_type}"
        );
        if let Some(charset) = content_type_param(&content_type, "charset") {
            assert!(
                charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii"),
                "body_text reads UTF-8 text only; this message is in {charset}"
            );
        }
        let (_, body) = self.split();
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_else(|| "7bit".to_owned());
        let bytes = match encoding.to_ascii_lowercase().as_str() {
            "7bit" | "8bit" | "binary" => body.as_bytes().to_vec(),
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                STANDARD.decode(compact).expect("the base64 body does not decode")
            }
            other => panic!("body_text does not know the transfer encoding {other}"),
        };
        String::from_utf8(bytes).expect("the body is not UTF-8").replace("\r\n", "\n")
    }

    fn split(&self) -> (&str, &str) {
        match self.data.find("\r\n\r\n") {
            Some(at) => (&self.data[..at], &self.data[at + 4..]),
            None => (&self.data, ""),
        }
    }
}

/// A parameter of a `Content-Type` value (`text/plain; charset=utf-8`), without quotes.
fn content_type_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| val.trim().trim_matches('"').to_owned())
    })
}

/// Quoted-printable (RFC 2045 section 6.7): `=XX` is a byte, `=` at the end of a line a soft line break. Lenient
/// like a mail reader: an `=` followed by anything else stays as it is.
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'=' {
            if bytes[at + 1..].starts_with(b"\r\n") {
                at += 3;
                continue;
            }
            if bytes[at + 1..].starts_with(b"\n") {
                at += 2;
                continue;
            }
            if let Some(byte) = bytes.get(at + 1..at + 3).and_then(hex_byte) {
                out.push(byte);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let pair = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(pair, 16).ok()
}

/// Decodes RFC 2047 encoded words in a header value. White space between two encoded words is dropped, and the
/// bytes of adjacent words are joined before being read as UTF-8, so a character split across words survives.
fn decode_encoded_words(value: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match parse_encoded_word(candidate) {
            Some((bytes, consumed)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.extend_from_slice(before.as_bytes());
                }
                out.extend(bytes);
                rest = &candidate[consumed..];
                after_word = true;
            }
            None => {
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(b"=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8(out).expect("the header is not UTF-8")
}

/// `=?charset?encoding?text?=` at the start of `word`: the decoded bytes and how many characters it took.
fn parse_encoded_word(word: &str) -> Option<(Vec<u8>, usize)> {
    let inner = word.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let consumed = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    let charset = charset.split('*').next().unwrap_or_default(); // RFC 2231 language suffix
    assert!(
        charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii"),
        "subject decoding reads UTF-8 only, not {charset}"
    );
    let bytes = match encoding {
        "B" | "b" => STANDARD.decode(text).ok()?,
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    Some((bytes, consumed))
}

/// Accepts SMTP connections on `127.0.0.1:<port>` and keeps every message; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Received>,
    accept: JoinHandle<()>,
    http: Option<MailboxServer>,
}

#[derive(Debug)]
struct MailboxServer {
    base_url: String,
    handle: actix_web::dev::ServerHandle,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Received {
    messages: Mutex<Vec<Delivery>>,
    arrived: Notify,
}

#[derive(Debug)]
struct Delivery {
    mail: Mail,
    /// Already returned by [`SmtpSink::wait_for`], which hands each message out once.
    claimed: bool,
}

impl SmtpSink {
    /// Listens on an ephemeral loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink listener");
        let addr = listener.local_addr().expect("SMTP sink listener address");
        let received = Arc::new(Received::default());
        let accept = tokio::spawn(accept_loop(listener, received.clone()));
        SmtpSink { addr, received, accept, http: None }
    }

    /// Starts (once) the HTTP view of the mailbox and returns its base URL, `http://127.0.0.1:<port>`:
    /// `GET /messages?to=<address>` (every message when `to` is absent). Reading does not claim messages from
    /// [`SmtpSink::wait_for`].
    pub fn serve_http(&mut self) -> String {
        if let Some(http) = &self.http {
            return http.base_url.clone();
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink's HTTP view");
        let base_url = format!("http://{}", listener.local_addr().expect("SMTP sink HTTP address"));
        let received = actix_web::web::Data::from(self.received.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().app_data(received.clone()).route("/messages", actix_web::web::get().to(list_messages))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen on the SMTP sink's HTTP socket")
        .run();
        let handle = server.handle();
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        self.http = Some(MailboxServer { base_url: base_url.clone(), handle, task });
        base_url
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.received.messages.lock().unwrap().iter().map(|d| d.mail.clone()).collect()
    }

    /// The oldest message to `to` (an envelope recipient, any case) not yet returned by `wait_for`, waiting for one
    /// to arrive: a second call for the same address waits for the second message. Panics, naming the address,
    /// when none arrives within `timeout`.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Mail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a message arriving in between still wakes us.
            let arrived = self.received.arrived.notified();
            if let Some(mail) = self.claim(to) {
                return mail;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let seen: Vec<Vec<String>> = self.messages().into_iter().map(|m| m.to).collect();
                panic!("no message to {to} arrived within {timeout:?} (recipients seen: {seen:?})");
            }
        }
    }

    fn claim(&self, to: &str) -> Option<Mail> {
        let mut messages = self.received.messages.lock().unwrap();
        let delivery =
            messages.iter_mut().find(|d| !d.claimed && d.mail.to.iter().any(|r| r.eq_ignore_ascii_case(to)))?;
        delivery.claimed = true;
        Some(delivery.mail.clone())
    }
}

impl Drop for SmtpSink {
    /// Aborting the accept task drops its listener and, with its `JoinSet`, every open session.
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(http) = self.http.take() {
            drop(http.handle.stop(false));
            http.task.abort();
        }
    }
}

#[derive(serde::Deserialize)]
struct MessagesQuery {
    to: Option<String>,
}

async fn list_messages(
    received: actix_web::web::Data<Received>,
    query: actix_web::web::Query<MessagesQuery>,
) -> actix_web::HttpResponse {
    let messages = received.messages.lock().unwrap();
    let listed: Vec<serde_json::Value> = messages
        .iter()
        .map(|d| &d.mail)
        .filter(|m| query.to.as_deref().is_none_or(|to| m.to.iter().any(|r| r.eq_ignore_ascii_case(to))))
        .map(|m| serde_json::json!({"from": m.from, "to": m.to, "subject": m.subject(), "text": m.body_text()}))
        .collect();
    actix_web::HttpResponse::Ok().json(listed)
}

async fn accept_loop(listener: TcpListener, received: Arc<Received>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let received = received.clone();
                    sessions.spawn(async move {
                        // A client that hangs up mid-session is not the sink's failure.
                        let _ = serve(stream, received).await;
                    });
                }
                Err(e) => tracing::warn!(error = %e, "SMTP sink accept failed"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// The state of one SMTP session (RFC 5321 section 4.1.4: a transaction is MAIL, RCPT..., DATA).
#[derive(Default)]
struct Session {
    greeted: bool,
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

impl Session {
    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }
}

async fn serve(stream: TcpStream, received: Arc<Received>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut session = Session::default();
    reply(&mut write, "220 almoner-testkit ESMTP sink ready").await?;
    loop {
        let Some(line) = read_line(&mut read).await? else { return Ok(()) };
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                session.greeted = true;
                session.reset();
                let greeting = format!("250-almoner-testkit greets {arg}");
                reply(&mut write, &format!("{greeting}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN"))
                    .await?;
            }
            "HELO" => {
                session.greeted = true;
                session.reset();
                reply(&mut write, "250 almoner-testkit").await?;
            }
            "AUTH" => {
                let user = authenticate(arg, &mut read, &mut write).await?;
                match user {
                    Some(user) => {
                        session.user = Some(user);
                        reply(&mut write, "235 2.7.0 Authentication successful").await?;
                    }
                    None => reply(&mut write, "501 5.5.4 Malformed AUTH").await?,
                }
            }
            "MAIL" if !session.greeted => reply(&mut write, "503 5.5.1 EHLO or HELO first").await?,
            "MAIL" => match path_after(arg, "FROM:") {
                Some(from) => {
                    session.reset();
                    session.from = Some(from);
                    reply(&mut write, "250 2.1.0 OK").await?;
                }
                None => reply(&mut write, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if session.from.is_none() => reply(&mut write, "503 5.5.1 MAIL first").await?,
            "RCPT" => match path_after(arg, "TO:") {
                Some(to) if !to.is_empty() => {
                    session.to.push(to);
                    reply(&mut write, "250 2.1.5 OK").await?;
                }
                _ => reply(&mut write, "501 5.5.4 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" if session.to.is_empty() => reply(&mut write, "503 5.5.1 RCPT first").await?,
            "DATA" => {
                reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let Some(data) = read_data(&mut read).await? else { return Ok(()) };
                let mail = Mail {
                    from: session.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut session.to),
                    data,
                    authenticated_as: session.user.clone(),
                };
                received.messages.lock().unwrap().push(Delivery { mail, claimed: false });
                received.arrived.notify_waiters();
                reply(&mut write, "250 2.0.0 OK queued").await?;
            }
            "RSET" => {
                session.reset();
                reply(&mut write, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(&mut write, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut write, "502 5.5.2 Command not recognised").await?,
        }
    }
}

/// Runs an AUTH exchange (`AUTH PLAIN [initial]` or `AUTH LOGIN [user]`) and returns the user name, or `None` when
/// it was malformed. Any password is accepted.
async fn authenticate(
    arg: &str,
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> io::Result<Option<String>> {
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((mechanism, initial)) => (mechanism.to_ascii_uppercase(), Some(initial.trim().to_owned())),
        None => (arg.to_ascii_uppercase(), None),
    };
    let decode = |b64: &str| STANDARD.decode(b64).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(initial) => initial,
                None => {
                    reply(write, "334 ").await?;
                    read_line(read).await?.unwrap_or_default()
                }
            };
            // authzid NUL authcid NUL passwd (RFC 4616)
            Ok(decode(&response).and_then(|plain| plain.split('\0').nth(1).map(str::to_owned)))
        }
        "LOGIN" => {
            let user = match initial {
                Some(initial) => initial,
                None => {
                    reply(write, &format!("334 {}", STANDARD.encode("Username:"))).await?;
                    read_line(read).await?.unwrap_or_default()
                }
            };
            reply(write, &format!("334 {}", STANDARD.encode("Password:"))).await?;
            let _password = read_line(read).await?;
            Ok(decode(&user))
        }
        _ => Ok(None),
    }
}

/// The address in `FROM:<address> [parameters]`, without brackets.
fn path_after(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = arg[keyword.len()..].trim_start();
    let path = path.strip_prefix('<')?;
    let end = path.find('>')?;
    Some(path[..end].to_owned())
}

/// One command line without its line ending, or `None` at the end of the stream.
async fn read_line(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if read.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&line);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The message after `DATA`, up to the line holding a single `.`, with the leading dot that the client added to
/// every line starting with one removed (RFC 5321 section 4.5.2). `None` if the client hung up first.
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> io::Result<Option<String>> {
    let mut data: Vec<u8> = Vec::new();
    loop {
        let mut line = Vec::new();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let line = if line.starts_with(b".") { &line[1..] } else { &line[..] };
        data.extend_from_slice(line);
    }
    // The line ending before the final dot is the terminator's (`<CRLF>.<CRLF>`), not the client's message.
    if data.ends_with(b"\r\n") {
        data.truncate(data.len() - 2);
    } else if data.ends_with(b"\n") {
        data.truncate(data.len() - 1);
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> io::Result<()> {
    write.write_all(text.as_bytes()).await?;
    write.write_all(b"\r\n").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::tcp::OwnedReadHalf;

    /// A raw SMTP client: one line out, one (possibly multi-line) reply back.
    struct Client {
        read: BufReader<OwnedReadHalf>,
        write: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(sink: &SmtpSink) -> (Client, Reply) {
            let stream = TcpStream::connect(sink.addr()).await.unwrap();
            let (read, write) = stream.into_split();
            let mut client = Client { read: BufReader::new(read), write };
            let greeting = client.reply().await;
            (client, greeting)
        }

        async fn send(&mut self, line: &str) -> Reply {
            self.write.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
            self.reply().await
        }

        async fn reply(&mut self) -> Reply {
            let mut lines = Vec::new();
            loop {
                let line = read_line(&mut self.read).await.unwrap().expect("the sink closed the connection");
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    break;
                }
            }
            Reply { code: lines[0][..3].parse().unwrap(), lines }
        }
    }

    #[derive(Debug)]
    struct Reply {
        code: u16,
        lines: Vec<String>,
    }

    const MESSAGE: &str = "From: Almoner <no-reply@localhost>\r\n\
        To: zoe@example.org\r\n\
        Subject: =?utf-8?b?U2lnbiBpbiwg?=\r\n =?utf-8?q?Zo=C3=AB?=\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Hello Zo=C3=AB,\r\n\
        ..a line that starts with a dot\r\n\
        https://almoner.example/sign-in?token=3Dab=3D=3D&next=3D%2Fhome and more te=\r\n\
        xt";

    #[tokio::test]
    async fn smtp_sink_takes_a_message_through_a_whole_session() {
        let sink = SmtpSink::start().await;
        let (mut client, greeting) = Client::connect(&sink).await;
        assert_eq!(greeting.code, 220);

        let ehlo = client.send("EHLO client.example").await;
        assert_eq!(ehlo.code, 250);
        assert!(ehlo.lines.len() > 1, "EHLO answers on several lines: {ehlo:?}");
        assert!(ehlo.lines.iter().any(|l| l.contains("AUTH PLAIN LOGIN")));

        assert_eq!(client.send("MAIL FROM:<no-reply@localhost> BODY=8BITMIME").await.code, 250);
        assert_eq!(client.send("RCPT TO:<zoe@example.org>").await.code, 250);
        assert_eq!(client.send("rcpt to:<Ops@Example.org>").await.code, 250);
        assert_eq!(client.send("DATA").await.code, 354);
        assert_eq!(client.send(&format!("{MESSAGE}\r\n.")).await.code, 250);
        assert_eq!(client.send("QUIT").await.code, 221);

        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        let mail = &messages[0];
        assert_eq!(mail.from, "no-reply@localhost");
        assert_eq!(mail.to, ["zoe@example.org", "Ops@Example.org"]);
        assert_eq!(mail.data, MESSAGE.replace("\r\n..a line", "\r\n.a line"), "dot-stuffing is undone");
        assert_eq!(mail.authenticated_as, None);
        assert_eq!(mail.subject(), "Sign in, Zoë");
        assert_eq!(
            mail.body_text(),
            "Hello Zoë,\n.a line that starts with a dot\n\
             https://almoner.example/sign-in?token=ab==&next=%2Fhome and more text"
        );
        assert_eq!(sink.wait_for("ops@example.org", Duration::from_secs(1)).await, *mail);
    }

    #[tokio::test]
    async fn smtp_sink_answers_commands_out_of_order_with_503() {
        let sink = SmtpSink::start().await;
        let (mut client, _) = Client::connect(&sink).await;
        assert_eq!(client.send("MAIL FROM:<a@example.org>").await.code, 503, "before EHLO");
        assert_eq!(client.send("HELO client.example").await.code, 250);
        assert_eq!(client.send("RCPT TO:<b@example.org>").await.code, 503, "before MAIL");
        assert_eq!(client.send("MAIL FROM:<a@example.org>").await.code, 250);
        assert_eq!(client.send("DATA").await.code, 503, "before RCPT");
        assert_eq!(client.send("RCPT TO:<b@example.org>").await.code, 250);
        assert_eq!(client.send("RSET").await.code, 250);
        assert_eq!(client.send("DATA").await.code, 503, "RSET forgot the transaction");
        assert_eq!(client.send("NOOP").await.code, 250);
        assert_eq!(client.send("MAIL FROM:a@example.org").await.code, 501);
        assert_eq!(client.send("STARTTLS").await.code, 502);
        assert_eq!(client.send("QUIT").await.code, 221);
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn smtp_sink_accepts_auth_plain_and_login_and_remembers_the_user() {
        let sink = SmtpSink::start().await;
        let (mut client, _) = Client::connect(&sink).await;
        client.send("EHLO client.example").await;
        let plain = STANDARD.encode("\0almoner\0secret");
        assert_eq!(client.send(&format!("AUTH PLAIN {plain}")).await.code, 235);

        let (mut other, _) = Client::connect(&sink).await;
        other.send("EHLO client.example").await;
        assert_eq!(other.send("AUTH LOGIN").await.code, 334);
        assert_eq!(other.send(&STANDARD.encode("relay-user")).await.code, 334);
        assert_eq!(other.send(&STANDARD.encode("relay-password")).await.code, 235);

        for (client, to) in [(&mut client, "plain@example.org"), (&mut other, "login@example.org")] {
            client.send("MAIL FROM:<>").await;
            client.send(&format!("RCPT TO:<{to}>")).await;
            client.send("DATA").await;
            assert_eq!(client.send("Subject: hi\r\n\r\nhello\r\n.").await.code, 250);
        }
        let plain = sink.wait_for("plain@example.org", Duration::from_secs(1)).await;
        assert_eq!(plain.authenticated_as.as_deref(), Some("almoner"));
        assert_eq!(plain.from, "");
        assert_eq!(plain.body_text(), "hello");
        let login = sink.wait_for("login@example.org", Duration::from_secs(1)).await;
        assert_eq!(login.authenticated_as.as_deref(), Some("relay-user"));
    }

    #[tokio::test]
    async fn smtp_sink_wait_for_waits_and_hands_each_message_out_once() {
        let sink = SmtpSink::start().await;
        let (mut client, _) = Client::connect(&sink).await;
        client.send("EHLO client.example").await;
        let waiting = sink.wait_for("late@example.org", Duration::from_secs(5));
        let sending = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for n in 1..=2 {
                client.send("MAIL FROM:<a@example.org>").await;
                client.send("RCPT TO:<late@example.org>").await;
                client.send("DATA").await;
                client.send(&format!("Subject: number {n}\r\n\r\nbody\r\n.")).await;
            }
        };
        let (first, ()) = tokio::join!(waiting, sending);
        assert_eq!(first.subject(), "number 1");
        let second = sink.wait_for("late@example.org", Duration::from_secs(1)).await;
        assert_eq!(second.subject(), "number 2");
    }

    #[tokio::test]
    async fn smtp_sink_shows_its_messages_over_http_without_claiming_them() {
        let mut sink = SmtpSink::start().await;
        let base = sink.serve_http();
        assert_eq!(sink.serve_http(), base, "started once");
        let (mut client, _) = Client::connect(&sink).await;
        client.send("EHLO client.example").await;
        for to in ["one@example.org", "two@example.org"] {
            client.send("MAIL FROM:<a@example.org>").await;
            client.send(&format!("RCPT TO:<{to}>")).await;
            client.send("DATA").await;
            client.send(&format!("Subject: for {to}\r\n\r\nSign in: https://x.example/s#token=1\r\n.")).await;
        }
        let http = reqwest::Client::new();
        let listed: serde_json::Value =
            http.get(format!("{base}/messages?to=TWO@example.org")).send().await.unwrap().json().await.unwrap();
        assert_eq!(
            listed,
            serde_json::json!([{"from": "a@example.org", "to": ["two@example.org"], "subject": "for two@example.org",
                "text": "Sign in: https://x.example/s#token=1"}])
        );
        let all: Vec<serde_json::Value> =
            http.get(format!("{base}/messages")).send().await.unwrap().json().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(sink.wait_for("two@example.org", Duration::from_secs(1)).await.subject(), "for two@example.org");
    }

    #[tokio::test]
    #[should_panic(expected = "no message to nobody@example.org arrived")]
    async fn smtp_sink_wait_for_panics_naming_the_address() {
        let sink = SmtpSink::start().await;
        sink.wait_for("nobody@example.org", Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn smtp_sink_stops_listening_when_dropped() {
        let sink = SmtpSink::start().await;
        let addr = sink.addr();
        let (mut open, _) = Client::connect(&sink).await;
        drop(sink);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "the sink still accepts connections");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), open.read.read_until(b'\n', &mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "an open session is closed too: {closed:?}");
    }

    fn mail(data: &str) -> Mail {
        Mail { from: String::new(), to: Vec::new(), data: data.to_owned(), authenticated_as: None }
    }

    #[test]
    fn smtp_mail_decodes_base64_and_seven_bit_bodies() {
        let base64 = mail(&format!(
            "Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n{}",
            &STANDARD.encode("Zoë ✓\r\nline two")[..8],
            &STANDARD.encode("Zoë ✓\r\nline two")[8..],
        ));
        assert_eq!(base64.body_text(), "Zoë ✓\nline two");
        let plain = mail("Subject: plain words\r\nContent-Transfer-Encoding: 7BIT\r\n\r\nline one\r\nline two");
        assert_eq!(plain.body_text(), "line one\nline two");
        assert_eq!(plain.subject(), "plain words");
        assert_eq!(mail("Subject: no body").body_text(), "");
    }

    #[test]
    fn smtp_mail_reads_folded_headers_and_encoded_words() {
        let m = mail("X-Long: one\r\n\ttwo\r\nSubject: Re: =?UTF-8?Q?caf=C3=A9_au_lait?= and =?bogus\r\n\r\n");
        assert_eq!(m.header("x-long").as_deref(), Some("one\ttwo"));
        assert_eq!(m.subject(), "Re: café au lait and =?bogus");
        assert_eq!(m.header("Missing"), None);
    }
}
