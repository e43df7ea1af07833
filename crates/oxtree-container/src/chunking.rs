//! The layer plan: which content objects go into which layer. Objects are
//! grouped into components (the Debian package owning a path, or the
//! `user.component` xattr of the file); the kernel and initramfs
//! (`usr/lib/modules/`) and content no package owns get layers of their
//! own; the packages of one source package stay together; big source
//! packages get a layer each and the rest is bin-packed, within
//! `max_layers` (the ostree commit layer included). Given the component
//! lists of a previous build, components stay in the layers they were in.

use crate::dpkg::PackageDb;
use crate::error::{ContainerError, Result};
use oxtree_object::Checksum;
use std::collections::{BTreeMap, BTreeSet};

/// The component of the kernel layer (no Debian package name has `@`).
pub const KERNEL: &str = "@kernel";
/// The component of content no package owns.
pub const UNPACKAGED: &str = "@unpackaged";
/// The dpkg database (owned by no package, and changed by every package
/// change): a layer of its own, so that adding one package does not
/// refetch the rest of the unpackaged content (an 18 MiB layer on the host
/// image, against a few hundred KiB of database that changed).
pub const DPKG_DATABASE: &str = "@dpkg-database";
/// ostree-ext's default and ceiling.
pub const DEFAULT_MAX_LAYERS: u32 = 64;
/// Fewer layers than this cannot hold the plan's fixed layers.
pub const MIN_MAX_LAYERS: u32 = 4;

/// A content object of the commit.
#[derive(Clone, Debug, Default)]
pub struct ObjectInfo {
    /// Content size (0 for symlinks).
    pub size: u64,
    /// Every path of the commit with this content, sorted.
    pub paths: Vec<String>,
    /// The `user.component` xattr, when set.
    pub component: Option<String>,
}

/// One layer of content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    /// What the layer holds, for the image history.
    pub description: String,
    /// The layer's `ostree.components`: its components and, for the
    /// kernel layer, the packages it took in; sorted.
    pub components: Vec<String>,
    /// Its objects, sorted.
    pub objects: Vec<Checksum>,
}

fn component_of(info: &ObjectInfo, db: Option<&PackageDb>) -> String {
    if let Some(c) = &info.component {
        return c.clone();
    }
    if info.paths.iter().any(|p| p.starts_with("usr/lib/modules/")) {
        return KERNEL.to_string();
    }
    let owner = db.and_then(|db| info.paths.iter().find_map(|p| db.owners.get(p)));
    let in_database = |p: &String| {
        crate::dpkg::DATABASE_DIRS
            .iter()
            .any(|d| p.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
    };
    match owner {
        Some(pkg) if pkg.starts_with("linux-image-") => KERNEL.to_string(),
        Some(pkg) => pkg.clone(),
        None if info.paths.iter().all(in_database) => DPKG_DATABASE.to_string(),
        None => UNPACKAGED.to_string(),
    }
}

fn describe(components: &[String]) -> String {
    let regular: Vec<&str> = components
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with('@'))
        .collect();
    if components.iter().any(|c| c == KERNEL) {
        return "kernel and initramfs".into();
    }
    if components.iter().any(|c| c == UNPACKAGED) && regular.is_empty() {
        return "content of no package".into();
    }
    if components.iter().any(|c| c == DPKG_DATABASE) && regular.is_empty() {
        return "the dpkg database".into();
    }
    match regular.len() {
        0 => "no components".into(),
        1..=5 => regular.join(" and "),
        n => format!("{n} components"),
    }
}

/// Plan the content layers of a commit whose content objects are
/// `objects`. `prior`: the `ostree.components` of a previous build's
/// content layers, in order.
pub fn plan(
    objects: &BTreeMap<Checksum, ObjectInfo>,
    db: Option<&PackageDb>,
    max_layers: u32,
    prior: Option<&[Vec<String>]>,
) -> Result<Vec<LayerPlan>> {
    if max_layers < MIN_MAX_LAYERS {
        return Err(ContainerError::Invalid(format!(
            "--max-layers must be at least {MIN_MAX_LAYERS}"
        )));
    }
    let budget = (max_layers - 1) as usize;
    // Component -> (objects, size); the packages the kernel layer took in.
    let mut comps: BTreeMap<String, (Vec<Checksum>, u64)> = BTreeMap::new();
    let mut kernel_pkgs = BTreeSet::new();
    for (csum, info) in objects {
        let c = component_of(info, db);
        if c == KERNEL {
            if let Some(db) = db {
                kernel_pkgs.extend(info.paths.iter().filter_map(|p| db.owners.get(p)).cloned());
            }
        }
        let e = comps.entry(c).or_default();
        e.0.push(*csum);
        e.1 += info.size;
    }
    let source = |c: &str| -> String {
        db.and_then(|db| db.packages.get(c))
            .map(|p| p.source.clone())
            .unwrap_or_else(|| c.to_string())
    };

    let bins = match prior.and_then(|p| with_prior(&comps, p, budget, &source)) {
        Some(b) => b,
        None => fresh(&comps, budget, &source),
    };

    Ok(bins
        .into_iter()
        .filter(|b| !b.is_empty())
        .map(|bin| {
            let mut objects: Vec<Checksum> = bin
                .iter()
                .flat_map(|c| comps[c].0.iter().copied())
                .collect();
            objects.sort();
            let mut names: BTreeSet<String> = bin.iter().cloned().collect();
            if names.contains(KERNEL) {
                names.extend(kernel_pkgs.iter().cloned());
            }
            let components: Vec<String> = names.into_iter().collect();
            LayerPlan {
                description: describe(&bin),
                components,
                objects,
            }
        })
        .collect())
}

type Bins = Vec<Vec<String>>;

/// A plan from nothing: the kernel and unpackaged layers, then the biggest
/// source packages a layer each (half the budget left), then the rest
/// packed, largest first, into the least full of the remaining layers.
fn fresh(
    comps: &BTreeMap<String, (Vec<Checksum>, u64)>,
    budget: usize,
    source: &dyn Fn(&str) -> String,
) -> Bins {
    let mut bins: Bins = Vec::new();
    for special in [KERNEL, UNPACKAGED, DPKG_DATABASE] {
        if comps.contains_key(special) {
            bins.push(vec![special.to_string()]);
        }
    }
    let left = budget.saturating_sub(bins.len()).max(1);
    // Source package -> (its components, size).
    let mut units: BTreeMap<String, (Vec<String>, u64)> = BTreeMap::new();
    for (c, (_, size)) in comps {
        if c.starts_with('@') {
            continue;
        }
        let u = units.entry(source(c)).or_default();
        u.0.push(c.clone());
        u.1 += size;
    }
    let mut units: Vec<(String, Vec<String>, u64)> =
        units.into_iter().map(|(s, (c, n))| (s, c, n)).collect();
    units.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    if units.len() <= left {
        bins.extend(units.into_iter().map(|u| u.1));
        return bins;
    }
    let own = left / 2;
    let packed = left - own;
    let mut rest = units.split_off(own);
    bins.extend(units.into_iter().map(|u| u.1));
    let mut packs: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); packed];
    for u in rest.drain(..) {
        let i = (0..packs.len())
            .min_by_key(|&i| (packs[i].0, i))
            .expect("at least one bin");
        packs[i].0 += u.2;
        packs[i].1.extend(u.1);
    }
    bins.extend(packs.into_iter().map(|p| p.1));
    bins
}

/// The previous layout, kept: components stay where they were, new ones
/// join their source package's layer, or else one new layer (the least
/// full layer when there is no room). `None` when the previous layout
/// does not fit in the budget.
fn with_prior(
    comps: &BTreeMap<String, (Vec<Checksum>, u64)>,
    prior: &[Vec<String>],
    budget: usize,
    source: &dyn Fn(&str) -> String,
) -> Option<Bins> {
    let mut placed = BTreeSet::new();
    let mut bins: Bins = Vec::new();
    for layer in prior {
        let bin: Vec<String> = layer
            .iter()
            .filter(|c| comps.contains_key(*c) && placed.insert((*c).clone()))
            .cloned()
            .collect();
        if !bin.is_empty() {
            bins.push(bin);
        }
    }
    if bins.len() > budget || bins.is_empty() {
        return None;
    }
    let mut new_layer = Vec::new();
    for c in comps.keys().filter(|c| !placed.contains(*c)) {
        let s = source(c);
        let sibling = bins.iter().position(|b| {
            b.iter()
                .any(|o| !o.starts_with('@') && !c.starts_with('@') && source(o) == s)
        });
        match sibling {
            Some(i) => bins[i].push(c.clone()),
            None => new_layer.push(c.clone()),
        }
    }
    if !new_layer.is_empty() {
        if bins.len() < budget {
            bins.push(new_layer);
        } else {
            let size = |b: &Vec<String>| b.iter().map(|c| comps[c].1).sum::<u64>();
            let i = (0..bins.len()).min_by_key(|&i| (size(&bins[i]), i))?;
            bins[i].extend(new_layer);
        }
    }
    Some(bins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::PackageInfo;

    fn obj(n: u8) -> Checksum {
        Checksum([n; 32])
    }

    fn setup(pkgs: &[(&str, &str, u64)]) -> (BTreeMap<Checksum, ObjectInfo>, PackageDb) {
        let mut objects = BTreeMap::new();
        let mut db = PackageDb::default();
        for (i, (p, src, size)) in pkgs.iter().enumerate() {
            let path = format!("usr/share/{p}/file");
            db.owners.insert(path.clone(), p.to_string());
            db.packages.insert(
                p.to_string(),
                PackageInfo {
                    source: src.to_string(),
                    installed_kib: *size,
                },
            );
            objects.insert(
                obj(i as u8),
                ObjectInfo {
                    size: *size,
                    paths: vec![path],
                    component: None,
                },
            );
        }
        (objects, db)
    }

    #[test]
    fn packs_within_budget_and_keeps_sources_together() {
        let pkgs: Vec<(String, String, u64)> = (0..40)
            .map(|i| (format!("p{i}"), format!("s{}", i / 2), 1000 - i as u64))
            .collect();
        let refs: Vec<(&str, &str, u64)> = pkgs
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
            .collect();
        let (mut objects, db) = setup(&refs);
        objects.insert(
            obj(200),
            ObjectInfo {
                size: 5,
                paths: vec!["usr/lib/modules/6.1/vmlinuz".into()],
                component: None,
            },
        );
        objects.insert(
            obj(201),
            ObjectInfo {
                size: 5,
                paths: vec!["usr/etc/hostname".into()],
                component: None,
            },
        );
        objects.insert(
            obj(202),
            ObjectInfo {
                size: 5,
                paths: vec!["usr/share/dpkg/database/status".into()],
                component: None,
            },
        );
        let plan = plan(&objects, Some(&db), 8, None).unwrap();
        assert_eq!(plan.len(), 7);
        assert_eq!(plan[0].components, vec![KERNEL]);
        assert_eq!(plan[1].components, vec![UNPACKAGED]);
        assert_eq!(plan[2].components, vec![DPKG_DATABASE]);
        assert_eq!(plan[2].objects, vec![obj(202)]);
        for l in &plan {
            for c in &l.components {
                if let Some(n) = c.strip_prefix('p') {
                    let n: usize = n.parse().unwrap();
                    let sib = format!("p{}", n ^ 1);
                    assert!(l.components.contains(&sib), "{c} without {sib}");
                }
            }
        }
        let total: usize = plan.iter().map(|l| l.objects.len()).sum();
        assert_eq!(total, objects.len());
    }

    #[test]
    fn prior_layout_is_kept() {
        let (objects, db) = setup(&[("a", "a", 10), ("b", "b", 20), ("c", "c", 30)]);
        let first = plan(&objects, Some(&db), 64, None).unwrap();
        let prior: Vec<Vec<String>> = first.iter().map(|l| l.components.clone()).collect();
        let (objects2, db2) = setup(&[
            ("a", "a", 10),
            ("b", "b", 20),
            ("c", "c", 30),
            ("d", "d", 99),
        ]);
        let second = plan(&objects2, Some(&db2), 64, Some(&prior)).unwrap();
        assert_eq!(&second[..first.len()], &first[..]);
        assert_eq!(second.last().unwrap().components, vec!["d"]);
        assert!(plan(&objects, Some(&db), 3, None).is_err());
    }

    #[test]
    fn xattr_overrides_package() {
        let (mut objects, db) = setup(&[("a", "a", 10)]);
        objects.get_mut(&obj(0)).unwrap().component = Some("mine".into());
        let p = plan(&objects, Some(&db), 64, None).unwrap();
        assert_eq!(p[0].components, vec!["mine"]);
    }
}
