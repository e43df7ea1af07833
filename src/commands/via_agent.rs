//! `--host=unix:///…|https://…`: run `admin` and package commands through
//! an oxtreed agent instead of in this process. The operation's events
//! are drawn by the same reporter as a local run; Ctrl-C cancels the
//! operation on the agent.

use crate::output::format_size;
use crate::reporter::CliReporter;
use anyhow::{bail, Context, Result};
use oxtree_agent::client::Client;
use oxtree_host::Reporter;
use serde_json::Value;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `admin status [--json]` from the agent.
pub fn status(host: &str, json: bool) -> Result<()> {
    let v = get(host, "/v1/host")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let h: oxtree_host::Host =
            serde_json::from_value(v).context("the agent's status is not a Host")?;
        print!("{}", h.to_text());
    }
    Ok(())
}

/// `GET path` from the agent: its JSON.
pub fn get(host: &str, path: &str) -> Result<Value> {
    let c = Client::new(host)?;
    Ok(runtime()?
        .block_on(c.request(hyper::Method::GET, path, None))?
        .ok()?)
}

/// Queue `POST /v1/host/{kind}` with `body`, follow it to its end, and
/// render its outcome. A failed or cancelled operation is an error.
pub fn operation(host: &str, kind: &str, body: Value, json: bool) -> Result<()> {
    let c = Client::new(host)?;
    let rep = CliReporter::new(json);
    let op = runtime()?.block_on(async {
        let path = format!("/v1/host/{kind}");
        let op = c.request(hyper::Method::POST, &path, Some(&body)).await?.ok()?;
        let id = op["id"].as_str().context("the agent returned no operation id")?.to_string();
        let follow = c.follow(&id, |v| {
            if let Ok(e) = serde_json::from_value::<oxtree_host::Event>(v.clone()) {
                rep.report(e);
            }
        });
        tokio::pin!(follow);
        let end = tokio::select! {
            r = &mut follow => r?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Cancelling operation {id}...");
                let _ = c.request(hyper::Method::DELETE, &format!("/v1/operations/{id}"), None).await;
                follow.await?
            }
        };
        anyhow::Ok(end)
    })?;
    match op["state"].as_str() {
        Some("succeeded") => {}
        Some("cancelled") => bail!(
            "operation {} was cancelled",
            op["id"].as_str().unwrap_or("?")
        ),
        _ => bail!(
            "{}",
            op["error"]["message"]
                .as_str()
                .unwrap_or("the operation failed")
        ),
    }
    let r = &op["result"];
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    if r["outcome"] == "dry-run" {
        crate::commands::layer::print_dry_run(r);
        return Ok(());
    }
    let s = |k: &str| r[k].as_str().unwrap_or("");
    for p in r["packagesAdded"].as_array().into_iter().flatten() {
        println!("Added: {}", p.as_str().unwrap_or(""));
    }
    for p in r["packagesRemoved"].as_array().into_iter().flatten() {
        println!("Removed: {}", p.as_str().unwrap_or(""));
    }
    match s("outcome") {
        "no-change" => println!("No update available."),
        "update-available" => println!("Update available: {} -> {}", s("current"), s("latest")),
        "staged" => println!(
            "Staged deployment {}; it is finalized at shutdown",
            s("deployment")
        ),
        "deployed" => println!("Deployment {} is the new default", s("deployment")),
        "rolled-back" | "default-set" => {
            println!("Deployment {} is now the default", s("deployment"))
        }
        "undeployed" => println!("Deleted deployment {}", s("deployment")),
        o @ ("pinned" | "unpinned") => {
            for c in r["changes"].as_array().into_iter().flatten() {
                let how = if c["changed"].as_bool() == Some(true) {
                    "now"
                } else {
                    "already"
                };
                println!("Deployment {} is {how} {o}", c["index"]);
            }
        }
        "kargs-changed" => println!(
            "Kernel arguments updated (bootversion {})",
            r["bootversion"]
        ),
        "rebooting" => println!("Rebooting"),
        "unlocked" => crate::commands::admin::print_unlocked(if s("mode") == "hotfix" {
            oxtree_host::UnlockMode::Hotfix
        } else {
            oxtree_host::UnlockMode::Transient
        }),
        _ => {}
    }
    if let Some(f) = r["freedBytes"].as_u64().filter(|&f| f > 0) {
        println!("Freed objects: {}", format_size(f));
    }
    Ok(())
}
