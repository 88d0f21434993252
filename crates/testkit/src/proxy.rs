//! A TCP proxy that can cut the network, to test what happens when a dependency goes away and comes back.
//!
//! ```ignore
//! let proxy = TcpProxy::start(broker_addr(&settings)).await;
//! let settings = broker::through(&settings, proxy.addr());
//! // ... connect through the proxy ...
//! proxy.cut().await;   // every live connection is closed; new ones are accepted and dropped at once
//! proxy.restore();     // new connections are forwarded again
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections from `127.0.0.1:<port>` to an upstream address until cut.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    cut: AtomicBool,
    /// Bumped by every cut; each forwarding task watches it and closes both ends when it changes.
    cuts: watch::Sender<u64>,
    /// Forwarding tasks alive, so `cut` can wait until every connection is really closed.
    live: watch::Sender<usize>,
    forwarded: AtomicU64,
}

impl TcpProxy {
    /// Listens on an ephemeral loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy listener");
        let addr = listener.local_addr().expect("proxy listener address");
        let state = Arc::new(State {
            upstream,
            cut: AtomicBool::new(false),
            cuts: watch::channel(0).0,
            live: watch::channel(0).0,
            forwarded: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        TcpProxy { addr, state, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every live connection (returning once they are all closed) and drops new ones as soon as they are
    /// accepted, like a peer that went away, until [`TcpProxy::restore`].
    pub async fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
        let mut live = self.state.live.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// How many connections have been forwarded so far (a reconnect shows as one more).
    pub fn connections(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if state.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        // Subscribe and count before spawning, so a cut racing with this accept either is seen by the watcher or
        // has already set the flag the task checks.
        let cuts = state.cuts.subscribe();
        state.live.send_modify(|n| *n += 1);
        tokio::spawn(forward(client, state.clone(), cuts));
    }
}

async fn forward(mut client: TcpStream, state: Arc<State>, mut cuts: watch::Receiver<u64>) {
    let _live = LiveGuard(state.clone());
    if state.cut.load(Ordering::SeqCst) {
        return;
    }
    let mut upstream = tokio::select! {
        connected = TcpStream::connect(state.upstream) => match connected {
            Ok(upstream) => upstream,
            Err(_) => return,
        },
        _ = cuts.changed() => return,
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = cuts.changed() => {}
    }
    // Both sockets close here.
}

struct LiveGuard(Arc<State>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn echo_once(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let proxy = TcpProxy::start(echo_server().await).await;
        assert_eq!(echo_once(proxy.addr()).await.unwrap(), b"ping");

        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();

        proxy.cut().await;
        // The live connection is closed: reading yields EOF (or a reset).
        let mut rest = Vec::new();
        let read = open.read_to_end(&mut rest).await;
        assert!(read.map(|n| n == 0).unwrap_or(true));
        assert!(echo_once(proxy.addr()).await.is_err());

        proxy.restore();
        assert_eq!(echo_once(proxy.addr()).await.unwrap(), b"ping");
        assert_eq!(proxy.connections(), 3);
    }
}
