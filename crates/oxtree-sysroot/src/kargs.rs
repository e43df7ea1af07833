//! Kernel command-line arguments with ostree's edit rules: `replace` sets
//! the value of the first argument with that key (dropping other copies) or
//! appends it; `append` always appends.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelArgs {
    args: Vec<String>,
}

fn key(arg: &str) -> &str {
    arg.split_once('=').map(|(k, _)| k).unwrap_or(arg)
}

impl KernelArgs {
    pub fn parse(s: &str) -> Self {
        KernelArgs {
            args: s.split_whitespace().map(str::to_string).collect(),
        }
    }

    pub fn replace(&mut self, arg: &str) {
        let k = key(arg);
        match self.args.iter().position(|a| key(a) == k) {
            Some(i) => {
                self.args[i] = arg.to_string();
                let mut n = 0;
                self.args.retain(|a| {
                    n += 1;
                    n - 1 == i || key(a) != k
                });
            }
            None => self.args.push(arg.to_string()),
        }
    }

    pub fn append(&mut self, arg: &str) {
        self.args.push(arg.to_string());
    }

    pub fn contains(&self, arg: &str) -> bool {
        if arg.contains('=') {
            self.args.iter().any(|a| a == arg)
        } else {
            self.args.iter().any(|a| key(a) == arg)
        }
    }

    /// `--delete=K` drops every `K`/`K=…`; `--delete=K=V` that exact one.
    /// False if nothing matched.
    pub fn delete(&mut self, arg: &str) -> bool {
        let before = self.args.len();
        if arg.contains('=') {
            self.args.retain(|a| a != arg);
        } else {
            self.args.retain(|a| key(a) != arg);
        }
        self.args.len() != before
    }

    /// `--replace=K=V`: set an argument that must already be present;
    /// `--replace=K=OLD=NEW` changes only the `K=OLD` copy. False if the
    /// key (or `K=OLD`) is not there.
    pub fn replace_existing(&mut self, arg: &str) -> bool {
        let k = key(arg);
        let rest = arg.split_once('=').map(|(_, v)| v).unwrap_or("");
        if let Some((old, new)) = rest.split_once('=') {
            let from = format!("{k}={old}");
            return match self.args.iter().position(|a| *a == from) {
                Some(i) => {
                    self.args[i] = format!("{k}={new}");
                    true
                }
                None => false,
            };
        }
        if !self.args.iter().any(|a| key(a) == k) {
            return false;
        }
        self.replace(arg);
        true
    }

    /// The key of an argument (`K` of `K=V`).
    pub fn key_of(arg: &str) -> &str {
        key(arg)
    }

    pub fn remove_key(&mut self, k: &str) {
        self.args.retain(|a| key(a) != k);
    }

    pub fn to_cmdline(&self) -> String {
        self.args.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn edits() {
        let mut k = KernelArgs::parse("root=/dev/sda quiet ostree=/a");
        k.replace("ostree=/b");
        k.replace("foo=bar");
        k.append("quiet");
        assert_eq!(
            k.to_cmdline(),
            "root=/dev/sda quiet ostree=/b foo=bar quiet"
        );
        k.replace("quiet");
        assert_eq!(k.to_cmdline(), "root=/dev/sda quiet ostree=/b foo=bar");
        assert!(k.replace_existing("foo=baz"));
        assert!(!k.replace_existing("nope=1"));
        assert!(k.replace_existing("root=/dev/sda=/dev/vda"));
        assert!(!k.replace_existing("root=/dev/sda=/dev/xda"));
        assert!(k.delete("quiet"));
        assert!(!k.delete("quiet"));
        assert_eq!(k.to_cmdline(), "root=/dev/vda ostree=/b foo=baz");
    }
}
