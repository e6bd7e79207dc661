//! A plain HTTP/1.1 client over one keep-alive connection: requests with a body, responses
//! with a `Content-Length` (all the service's answers have one). Enough for a load generator,
//! and nothing in it to measure but the socket.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes read past the end of the last response (none, with one request at a time).
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            out: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one request and reads its response: status and body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        self.out.clear();
        self.out.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: sealwatch\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await?;
        // The head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line in {head:?}"))?;
        let mut length = None;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked responses are not supported (status {status})");
                }
            }
        }
        // 204 and 304 have no body, and say so by having no length.
        let length = match length {
            Some(n) => n,
            None if status == 204 || status == 304 => 0,
            None => bail!("no Content-Length in {head:?}"),
        };
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok((status, body))
    }

    async fn fill(&mut self) -> Result<()> {
        let start = self.buf.len();
        self.buf.resize(start + 64 * 1024, 0);
        let n = self.stream.read(&mut self.buf[start..]).await?;
        self.buf.truncate(start + n);
        if n == 0 {
            bail!("the service closed the connection");
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
