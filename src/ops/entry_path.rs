//! How a PATH argument becomes an entry name, and where an entry lands on
//! restore. A PATH is stored as given: relative paths relative to the
//! working directory, absolute ones as absolute.

use std::path::{Component, Path, PathBuf};

use crate::layer::root::RootPath;

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

/// The one path every spelling of an entry's directory comes to: absolute,
/// lexically cleaned, `.` being the working directory. `tree`, `./tree/`
/// and `/abs/cwd/tree` are one entry. `..` is taken lexically, never by
/// asking the disk, so a symlink cannot change what a name means.
pub fn canonical(name: &str, cwd: &Path) -> PathBuf {
    lexical_normalize(&resolve(name, cwd))
}

/// How the root at canonical path `root` is reached on restore.
///
/// The anchor is a directory the user chose, opened as it is: the working
/// directory (a physical path, no symlinks) or `$HOME` when the root lies
/// below one, else the parent of `outermost`, the outermost entry of the
/// restore that contains the root (it may be the root itself), since only
/// a PATH the user named lies elsewhere. Every component below the anchor
/// is walked without following a symlink.
pub fn root_path(
    root: &Path,
    outermost: &Path,
    cwd: &Path,
    home: Option<&Path>,
    allow_symlink: bool,
) -> RootPath {
    let cwd = lexical_normalize(cwd);
    let home = home.map(lexical_normalize);
    let anchor = if root.starts_with(&cwd) {
        cwd
    } else if let Some(home) = home.filter(|h| root.starts_with(h)) {
        home
    } else {
        outermost
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    };
    let below = root
        .strip_prefix(&anchor)
        .map(|rest| {
            rest.components()
                .map(|c| c.as_os_str().to_os_string())
                .collect()
        })
        .unwrap_or_default();
    RootPath {
        anchor,
        below,
        allow_symlink,
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
    fn spellings_of_one_directory_are_one_canonical_path() {
        let cwd = Path::new("/work/project");
        let want = PathBuf::from("/work/project/tree");
        for name in [
            "tree",
            "./tree/",
            "tree/.",
            "/work/project/tree",
            "sub/../tree",
            "/work/project//tree/",
        ] {
            assert_eq!(canonical(name, cwd), want, "{name}");
        }
        assert_eq!(canonical(".", cwd), PathBuf::from("/work/project"));
        assert_eq!(canonical("../x", cwd), PathBuf::from("/work/x"));
        assert_eq!(canonical("/../../etc", cwd), PathBuf::from("/etc"));
    }

    #[test]
    fn roots_are_walked_from_the_nearest_anchor_the_user_chose() {
        let cwd = Path::new("/home/u/proj");
        let home = Some(Path::new("/home/u"));
        let walk = |root: &str, outermost: &str| {
            let r = root_path(Path::new(root), Path::new(outermost), cwd, home, false);
            let below: Vec<String> = r
                .below
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            (r.anchor, below)
        };
        assert_eq!(
            walk("/home/u/proj/target/debug", "/home/u/proj/target/debug"),
            (
                PathBuf::from("/home/u/proj"),
                vec!["target".into(), "debug".into()]
            )
        );
        assert_eq!(
            walk("/home/u/proj", "/home/u/proj"),
            (PathBuf::from("/home/u/proj"), vec![])
        );
        assert_eq!(
            walk("/home/u/.cargo/registry", "/home/u/.cargo/registry"),
            (
                PathBuf::from("/home/u"),
                vec![".cargo".into(), "registry".into()]
            )
        );
        // Elsewhere (a PATH the user named): from the parent of the
        // outermost entry that contains it, so what an enclosing entry of
        // the cache may have planted is never followed.
        assert_eq!(
            walk("/opt/build/out/sub", "/opt/build"),
            (
                PathBuf::from("/opt"),
                vec!["build".into(), "out".into(), "sub".into()]
            )
        );
        assert_eq!(walk("/", "/"), (PathBuf::from("/"), vec![]));
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
