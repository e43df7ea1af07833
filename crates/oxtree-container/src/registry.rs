//! Registry push (OCI distribution API, through `oci-client`): blobs the
//! registry lacks, then the manifest under its tag. Plain HTTP only when
//! asked (`insecure`); TLS trusts the system roots (`SSL_CERT_FILE` is
//! honoured) plus any `*.crt`/`*.pem` of a `cert_dir`.

use crate::error::{ContainerError, IoContext, Result};
use crate::oci::{Blob, OciLayout, MANIFEST_MEDIA_TYPE};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain HTTP (and, over TLS, no certificate verification).
    pub insecure: bool,
    /// A directory of extra CA certificates (`*.crt`, `*.pem`), as
    /// containers' `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// `user:password` for basic or token auth.
    pub credentials: Option<(String, String)>,
}

/// The error and its sources (oci-client's errors name only themselves).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    oxtree_io::Chain(e).to_string()
}

fn reg_err(registry: &str, e: impl std::error::Error + 'static) -> ContainerError {
    ContainerError::Registry {
        registry: registry.to_string(),
        reason: chain(&e),
    }
}

fn reg_err_in(registry: &str, what: &str, e: impl std::error::Error + 'static) -> ContainerError {
    ContainerError::Registry {
        registry: registry.to_string(),
        reason: format!("{what}: {}", chain(&e)),
    }
}

pub(crate) fn client(reference: &Reference, opts: &RegistryOptions) -> Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ClientConfig {
        use_monolithic_push: true,
        ..Default::default()
    };
    if opts.insecure {
        config.protocol = ClientProtocol::HttpsExcept(vec![reference.registry().to_string()]);
        config.accept_invalid_certificates = true;
    }
    let mut certs = Vec::new();
    if let Ok(f) = std::env::var("SSL_CERT_FILE") {
        if let Ok(data) = std::fs::read(&f) {
            certs.push(data);
        }
    }
    if let Some(dir) = &opts.cert_dir {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .ctx(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "crt" || e == "pem" || e == "cert")
            })
            .collect();
        names.sort();
        for p in names {
            certs.push(std::fs::read(&p).ctx(|| format!("reading {}", p.display()))?);
        }
    }
    config.extra_root_certificates = certs
        .into_iter()
        .map(|data| Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        })
        .collect();
    Ok(Client::new(config))
}

pub(crate) fn auth(opts: &RegistryOptions) -> RegistryAuth {
    match &opts.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

/// Push the manifest `manifest` (canonical bytes, with its `blobs` stored in
/// `layout`) to `reference`; returns the blobs uploaded (the others were
/// there already).
pub fn push(
    layout: &OciLayout,
    blobs: &[Blob],
    manifest: &[u8],
    reference: &str,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Blob, bool) + Sync),
    cancel: &AtomicBool,
) -> Result<usize> {
    let r: Reference = reference.parse().map_err(|e| ContainerError::ImageRef {
        reference: reference.to_string(),
        reason: format!("{e}"),
    })?;
    let registry = r.registry().to_string();
    let c = client(&r, opts)?;
    let auth = auth(opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .ctx(|| "starting the async runtime")?;
    rt.block_on(async {
        c.auth(&r, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| reg_err(&registry, e))?;
        let mut uploaded = 0;
        for b in blobs {
            if cancel.load(Ordering::Relaxed) {
                return Err(ContainerError::Cancelled);
            }
            let present = c
                .blob_exists(&r, &b.digest)
                .await
                .map_err(|e| reg_err(&registry, e))?;
            if !present {
                let p = layout.blob_path(&b.digest)?;
                let data = std::fs::read(&p).ctx(|| format!("reading {}", p.display()))?;
                c.push_blob(&r, data, &b.digest)
                    .await
                    .map_err(|e| reg_err_in(&registry, &format!("pushing {}", b.digest), e))?;
                uploaded += 1;
            }
            progress(b, !present);
        }
        c.push_manifest_raw(
            &r,
            manifest.to_vec(),
            MANIFEST_MEDIA_TYPE.parse().expect("a valid header value"),
        )
        .await
        .map_err(|e| reg_err_in(&registry, "pushing the manifest", e))?;
        Ok(uploaded)
    })
}
