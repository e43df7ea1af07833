//! `oxtree serve [--port=N] [--bind=ADDR]`: serve the repository read-only
//! over HTTP so `ostree pull` / `oxtree pull` can fetch from it.

use crate::util::open_repo;
use anyhow::{Context, Result};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (0: pick a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let server =
        oxtree_transport::serve::Server::bind(repo.path(), SocketAddr::new(a.bind, a.port))?;
    let addr = server.local_addr()?;
    let host = match addr {
        SocketAddr::V6(v) => format!("[{}]", v.ip()),
        SocketAddr::V4(v) => v.ip().to_string(),
    };
    println!(
        "Serving {} at http://{host}:{}/",
        repo.path().display(),
        addr.port()
    );
    std::io::stdout().flush().context("writing to stdout")?;
    drop(repo);
    server.run()?;
    Ok(())
}
