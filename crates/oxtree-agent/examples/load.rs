//! Load generator for bench/agent-status.sh: `load SOCKET CLIENTS
//! REQUESTS_EACH [PATH]` runs CLIENTS concurrent clients, each on its own
//! keep-alive connection sending REQUESTS_EACH sequential `GET PATH`
//! (default /v1/host) to the agent's unix socket, and prints the latency
//! percentiles and the throughput.

// A command-line tool, not the library: it prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: load SOCKET CLIENTS REQUESTS_EACH [PATH]");
        std::process::exit(2);
    }
    let sock = a[1].clone();
    let clients: usize = a[2].parse().unwrap();
    let each: usize = a[3].parse().unwrap();
    let path = a.get(4).cloned().unwrap_or_else(|| "/v1/host".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let mut lat: Vec<Duration> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (sock, path) = (sock.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let s = tokio::net::UnixStream::connect(&sock).await.unwrap();
                let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let mut v = Vec::with_capacity(each);
                for _ in 0..each {
                    let req = hyper::Request::get(path.as_str())
                        .header("host", "localhost")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let t = Instant::now();
                    let r = tx.send_request(req).await.unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    r.into_body().collect().await.unwrap();
                    v.push(t.elapsed());
                }
                v
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let wall = t.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} requests, {clients} clients: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} req/s",
        lat.len(),
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(*lat.last().unwrap()),
        lat.len() as f64 / wall.as_secs_f64()
    );
}
