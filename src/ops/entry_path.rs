//! How a PATH argument becomes an entry name, and where an entry lands on
//! restore. A PATH is stored as given: relative paths relative to the
//! working directory, absolute ones as absolute.

use std::path::{Component, Path, PathBuf};

/// The cleaned name an entry is stored under: `./target/` → `target`,
/// `/a//b/` → `/a/b`. `..` is kept: it is the user's own choice of where
/// the directory lives. `None` for an empty argument.
pub fn entry_name(arg: &str) -> Option<String> {
    if arg.is_empty() {
        return None;
    }
    let path = Path::new(arg);
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => parts.push("..".into()),
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let joined = parts.join("/");
    Some(if path.is_absolute() {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    })
}

/// Where an entry named `name` lives relative to `cwd`.
pub fn resolve(name: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(name);
    if path.is_absolute() || name == "." {
        if name == "." {
            return cwd.to_path_buf();
        }
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Whether an entry a cache names may be restored without the user asking
/// for it by name. A cache is untrusted: without this, a hostile cache could
/// list `/root/.ssh` and a plain `regcache restore` would write there. Paths
/// below the working directory or the home directory pass; anything else
/// must be named on the command line.
pub fn safe_to_restore_implicitly(name: &str, cwd: &Path, home: Option<&Path>) -> bool {
    let resolved = lexical_normalize(&resolve(name, cwd));
    let under = |base: &Path| resolved.starts_with(lexical_normalize(base));
    under(cwd) || home.is_some_and(under)
}

fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_but_keep_their_kind() {
        assert_eq!(entry_name("target/").as_deref(), Some("target"));
        assert_eq!(entry_name("./target").as_deref(), Some("target"));
        assert_eq!(entry_name("a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(
            entry_name("/home/u/.cargo/registry/").as_deref(),
            Some("/home/u/.cargo/registry")
        );
        assert_eq!(entry_name("../sibling").as_deref(), Some("../sibling"));
        assert_eq!(entry_name(".").as_deref(), Some("."));
        assert_eq!(entry_name("./").as_deref(), Some("."));
        assert_eq!(entry_name(""), None);
    }

    #[test]
    fn resolve_is_relative_to_the_working_directory() {
        let cwd = Path::new("/work/project");
        assert_eq!(
            resolve("target", cwd),
            PathBuf::from("/work/project/target")
        );
        assert_eq!(resolve("/abs/dir", cwd), PathBuf::from("/abs/dir"));
        assert_eq!(resolve(".", cwd), PathBuf::from("/work/project"));
    }

    #[test]
    fn implicit_restore_stays_under_cwd_or_home() {
        let cwd = Path::new("/work/project");
        let home = Some(Path::new("/home/u"));
        assert!(safe_to_restore_implicitly("target", cwd, home));
        assert!(safe_to_restore_implicitly(
            "/home/u/.cargo/registry",
            cwd,
            home
        ));
        assert!(!safe_to_restore_implicitly("/root/.ssh", cwd, home));
        assert!(!safe_to_restore_implicitly("../../etc", cwd, home));
        assert!(!safe_to_restore_implicitly("/home/u/../v", cwd, home));
        assert!(safe_to_restore_implicitly("a/../b", cwd, None));
    }
}
