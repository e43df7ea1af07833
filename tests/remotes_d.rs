//! Remotes of the system repository in `/etc/ostree/remotes.d`, compared
//! with ostree. A repo is "the system repo" only when it is `/ostree/repo`,
//! so each tool runs in a private mount namespace, chrooted into a tmpfs
//! root that has the host's /usr, its own `/ostree/repo` and its own
//! `/etc/ostree/remotes.d`; the machine's own /etc and / are never touched.
//! The scenario ends with a pull over HTTP through a remote that only
//! remotes.d defines; the chroot has no CA certificates, as a minimal
//! image without ca-certificates, which must not stop a plain-http pull.

#[path = "support/ns.rs"]
mod ns;
use ns::{require, run_unshared};

/// The same remote commands, as a shell body run inside the chroot with
/// `$X` = the tool.
const SCENARIO: &str = r#"
set -u
$X init --repo=/ostree/repo --mode=archive
$X init --repo=/tmp/plain --mode=archive
echo "== add to the system repo"
$X remote add --repo=/ostree/repo --no-gpg-verify foo http://127.0.0.1:1/repo main
ls /etc/ostree/remotes.d
cat /etc/ostree/remotes.d/foo.conf
grep -c 'remote "' /ostree/repo/config || true
echo "== add to a plain repo"
$X remote add --repo=/tmp/plain --no-gpg-verify bar http://127.0.0.1:1/bar
grep -A1 'remote "bar"' /tmp/plain/config
echo "== a remote dropped into remotes.d"
printf '[remote "a"]\nurl=http://127.0.0.1:2/a\ngpg-verify=false\n\n[remote "b"]\nurl=http://127.0.0.1:2/b\n' > /etc/ostree/remotes.d/ab.conf
printf '[remote "n"]\nurl=http://127.0.0.1:2/n\n' > /etc/ostree/remotes.d/ignored.txt
$X remote list -u --repo=/ostree/repo
$X remote show-url --repo=/ostree/repo b
echo "== add an existing one"
$X remote add --repo=/ostree/repo a http://x 2>/dev/null; echo "rc=$?"
$X remote add --repo=/ostree/repo --if-not-exists a http://x; echo "rc=$?"
echo "== delete one from a shared file"
$X remote delete --repo=/ostree/repo a; echo "rc=$?"
ls /etc/ostree/remotes.d
$X remote list --repo=/ostree/repo
echo "== delete the added one"
$X remote delete --repo=/ostree/repo foo
ls /etc/ostree/remotes.d
echo "== a name defined twice"
printf '[remote "d"]\nurl=http://127.0.0.1:2/d1\n' > /etc/ostree/remotes.d/d1.conf
printf '[remote "d"]\nurl=http://127.0.0.1:2/d2\n' > /etc/ostree/remotes.d/d2.conf
$X remote list --repo=/ostree/repo 2>/tmp/err; echo "rc=$?"
grep -c 'Multiple specifications found for remote "d"' /tmp/err
rm /etc/ostree/remotes.d/d2.conf
echo "== pull through a remote defined in remotes.d"
mkdir -p /tmp/t && echo hello > /tmp/t/f
$X init --repo=/tmp/srv --mode=archive
$X commit --repo=/tmp/srv -b main --timestamp=2021-01-01 -s s --tree=dir=/tmp/t
$X summary --repo=/tmp/srv -u
python3 -m http.server -d /tmp/srv --bind 127.0.0.1 "$PORT" >/dev/null 2>&1 &
srv=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null; do
  i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.1
done
printf '[remote "p"]\nurl=http://127.0.0.1:%s\ngpg-verify=false\n' "$PORT" > /etc/ostree/remotes.d/p.conf
$X pull --repo=/ostree/repo p main >/dev/null; echo "rc=$?"
$X rev-parse --repo=/ostree/repo p:main
$X fsck --repo=/ostree/repo >/dev/null; echo "rc=$?"
kill $srv
"#;

fn run_in_system_root(tool: &str) -> String {
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-remotes-d-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = scratch.path().display();
    let ox = env!("CARGO_BIN_EXE_oxtree");
    let x = if tool == "ostree" {
        "/usr/bin/ostree"
    } else {
        "/oxtree"
    };
    std::fs::write(scratch.path().join("scenario.sh"), SCENARIO).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        r#"set -e
R={d}/root
mkdir -p $R
mount -t tmpfs tmpfs $R
mkdir -p $R/usr $R/proc $R/dev $R/tmp $R/var/tmp $R/etc/ostree/remotes.d $R/ostree
for l in bin sbin lib lib64; do [ -L /$l ] && ln -s usr/$l $R/$l; done
mount --bind /usr $R/usr
mount --rbind /dev $R/dev
mount -t proc proc $R/proc
touch $R/oxtree && mount --bind {ox} $R/oxtree
cp {d}/scenario.sh $R/scenario.sh
chroot $R env X={x} PORT={port} sh /scenario.sh 2>&1
"#
    );
    run_unshared(&script)
}

#[test]
fn system_repo_remotes_d_matches_ostree() {
    for b in ["ostree", "unshare", "chroot", "mount"] {
        require(b);
    }
    let want = run_in_system_root("ostree");
    let got = run_in_system_root("oxtree");
    // The scenario checks itself partly; make sure it really saw remotes.d.
    assert!(want.contains("foo.conf"), "ostree run: {want}");
    assert!(
        want.contains("b    http://127.0.0.1:2/b"),
        "ostree run: {want}"
    );
    assert!(want.contains("== pull through"), "ostree run: {want}");
    let pulled = want.split("== pull through").nth(1).unwrap();
    assert!(pulled.lines().any(|l| l.len() == 64), "ostree run: {want}");
    assert_eq!(got, want, "oxtree:\n{got}\nostree:\n{want}");
}
