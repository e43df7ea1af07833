//! OCI image layouts: blobs written once under `blobs/sha256/` (named by
//! the digest of their bytes, computed while they are written), canonical
//! JSON for manifests and configs (sorted keys, no spaces: the same image
//! gives the same digests), `index.json` with tagged manifests, and the
//! layout as one tar file (`oci-archive:`).

use crate::error::{ContainerError, IoContext, Result};
use flate2::write::GzEncoder;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A blob as a descriptor needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:HEX`
    pub digest: String,
    pub size: u64,
}

/// A compressed layer: its blob and the digest of the uncompressed tar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub blob: Blob,
    pub diff_id: String,
}

/// JSON with object keys sorted and no whitespace.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<(&String, &Value)> = m.iter().collect();
                keys.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, v)) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).expect("a string serializes"));
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).expect("a scalar serializes")),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// `sha256:HEX` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:` digest, checked.
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(h)
        }
        _ => Err(ContainerError::Invalid(format!(
            "unsupported digest {digest:?} (expected sha256:<64 lowercase hex>)"
        ))),
    }
}

/// A writer that hashes and counts what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    n: u64,
}

impl<W> std::fmt::Debug for HashWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWriter").field("n", &self.n).finish()
    }
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            n: 0,
        }
    }
    pub fn finish(self) -> (W, String, u64) {
        let d = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, d, self.n)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The gzip stream every layer goes through: fixed header (no name, mtime
/// 0), default level, so the same tar gives the same blob.
pub type LayerStream = HashWriter<GzEncoder<HashWriter<std::io::BufWriter<std::fs::File>>>>;

/// An OCI image layout directory being written.
#[derive(Debug)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Open or create a layout at `root`.
    pub fn create(root: &Path) -> Result<OciLayout> {
        let blobs = root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).ctx(|| format!("creating {}", blobs.display()))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(OciLayout {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Store bytes as a blob.
    pub fn put_blob(&self, data: &[u8]) -> Result<Blob> {
        let digest = digest_of(data);
        let p = self.blob_path(&digest)?;
        if !p.exists() {
            write_atomic(&p, data)?;
        }
        Ok(Blob {
            digest,
            size: data.len() as u64,
        })
    }

    /// A JSON document as a blob, canonical.
    pub fn put_json(&self, v: &Value) -> Result<(Blob, Vec<u8>)> {
        let bytes = canonical_json(v);
        Ok((self.put_blob(&bytes)?, bytes))
    }

    /// Start a gzip-compressed layer; `finish_layer` stores it.
    pub fn start_layer(&self) -> Result<(tempfile::NamedTempFile, LayerStream)> {
        let dir = self.root.join("blobs/sha256");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-layer-")
            .tempfile_in(&dir)
            .ctx(|| format!("creating a layer in {}", dir.display()))?;
        let f = tmp.reopen().ctx(|| "opening the layer")?;
        let compressed = HashWriter::new(std::io::BufWriter::with_capacity(256 << 10, f));
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(compressed, flate2::Compression::default());
        Ok((tmp, HashWriter::new(gz)))
    }

    pub fn finish_layer(
        &self,
        tmp: tempfile::NamedTempFile,
        stream: LayerStream,
    ) -> Result<LayerBlob> {
        let (gz, diff_id, _) = stream.finish();
        let compressed = gz.finish().ctx(|| "compressing a layer")?;
        let (buf, digest, size) = compressed.finish();
        let f = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| "writing a layer")?;
        f.sync_all().ctx(|| "syncing a layer")?;
        let dest = self.blob_path(&digest)?;
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .ctx(|| format!("storing {}", dest.display()))?;
        Ok(LayerBlob {
            blob: Blob { digest, size },
            diff_id,
        })
    }

    /// Add a manifest to `index.json`: replacing the one of the same tag,
    /// or (untagged) every manifest, as ostree-ext does.
    pub fn add_manifest(&self, manifest: &Blob, tag: Option<&str>, platform: Value) -> Result<()> {
        let path = self.root.join("index.json");
        let mut manifests: Vec<Value> = match std::fs::read(&path) {
            Ok(b) => {
                let v: Value = serde_json::from_slice(&b)
                    .map_err(|e| ContainerError::Invalid(format!("{}: {e}", path.display())))?;
                v.get("manifests")
                    .and_then(|m| m.as_array())
                    .cloned()
                    .unwrap_or_default()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx(|| format!("reading {}", path.display())),
        };
        manifests.retain(|m| match tag {
            Some(t) => {
                m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                    .and_then(|v| v.as_str())
                    != Some(t)
            }
            None => false,
        });
        let mut desc = serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest.digest,
            "size": manifest.size,
            "platform": platform,
        });
        if let Some(t) = tag {
            desc["annotations"] = serde_json::json!({ REF_NAME: t });
        }
        manifests.push(desc);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        });
        write_atomic(&path, &canonical_json(&index))
    }

    /// The layout as one tar file (sorted members, mtime 0).
    pub fn write_archive(&self, dest: &Path) -> Result<()> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-oci-archive-")
            .tempfile_in(parent)
            .ctx(|| format!("creating a file in {}", parent.display()))?;
        let f = tmp.reopen().ctx(|| "opening the archive")?;
        let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(256 << 10, f));
        let entry = |tar: &mut tar::Builder<_>, name: &str, src: Option<&Path>| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            match src {
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    tar.append_data(&mut h, name, std::io::empty())
                }
                Some(p) => (|| {
                    let f = std::fs::File::open(p)?;
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(f.metadata()?.len());
                    tar.append_data(&mut h, name, f)
                })(),
            }
            .ctx(|| format!("archiving {name}"))
        };
        entry(&mut tar, "blobs", None)?;
        entry(&mut tar, "blobs/sha256", None)?;
        let blobs = self.root.join("blobs/sha256");
        let mut names: Vec<String> = std::fs::read_dir(&blobs)
            .ctx(|| format!("listing {}", blobs.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for n in names {
            entry(
                &mut tar,
                &format!("blobs/sha256/{n}"),
                Some(&blobs.join(&n)),
            )?;
        }
        entry(&mut tar, "index.json", Some(&self.root.join("index.json")))?;
        entry(&mut tar, "oci-layout", Some(&self.root.join("oci-layout")))?;
        let w = tar.into_inner().ctx(|| "finishing the archive")?;
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| "writing the archive")?;
        f.sync_all().ctx(|| "syncing the archive")?;
        tmp.persist(dest)
            .map_err(|e| e.error)
            .ctx(|| format!("storing {}", dest.display()))?;
        Ok(())
    }
}

/// Write a file by temp file and rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .ctx(|| format!("creating a file in {}", parent.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .ctx(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .ctx(|| format!("storing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#
        );
        assert!(digest_hex("sha256:00").is_err());
        assert!(digest_hex(&digest_of(b"x")).is_ok());
    }
}
