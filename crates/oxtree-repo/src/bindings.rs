//! Ref and collection bindings of a commit (`ostree.ref-binding`,
//! `ostree.collection-binding`): which refs and which collection a commit
//! was made for, so that a server cannot pass one branch's commit off as
//! another's. The rules and wording are ostree's (pulls, `fsck
//! --verify-bindings`).

use oxtree_object::gvariant::Variant;
use oxtree_object::Commit;

/// The refs a commit is bound to; None when it has no (well-typed) binding.
pub fn ref_binding(commit: &Commit) -> Option<Vec<String>> {
    let v = commit.metadata.get("ostree.ref-binding")?;
    Vec::<String>::from_value(v.clone())
}

/// Check a commit fetched as `ref_name` (None: by checksum) from a source
/// of collection `collection_id` (None: no collection configured). The ref
/// binding is checked when present, and must be present with a collection;
/// the collection binding is checked only with a collection. The error is
/// ostree's message.
pub fn verify_bindings(
    collection_id: Option<&str>,
    ref_name: Option<&str>,
    commit: &Commit,
) -> Result<(), String> {
    let Some(refs) = ref_binding(commit) else {
        if collection_id.is_none() {
            return Ok(());
        }
        return Err("Expected commit metadata to have ref binding information, found none".into());
    };
    if let Some(name) = ref_name {
        if !refs.iter().any(|r| r == name) {
            let listed = if refs.is_empty() {
                "no refs".to_string()
            } else {
                refs.iter()
                    .map(|r| format!("‘{r}’"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "Commit has no requested ref ‘{name}’ in ref binding metadata ({listed})"
            ));
        }
    }
    if let Some(id) = collection_id {
        let Some(bound) = commit.metadata.get_str("ostree.collection-binding") else {
            return Err(
                "Expected commit metadata to have collection ID binding information, found none"
                    .into(),
            );
        };
        if bound != id {
            return Err(format!(
                "Commit has collection ID ‘{bound}’ in collection binding metadata, while the remote it came from has collection ID ‘{id}’"
            ));
        }
    }
    Ok(())
}
