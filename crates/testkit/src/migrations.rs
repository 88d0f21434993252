//! A service's migration list against its `migrations/` directory. The list is written by hand (each file is
//! embedded with `include_str!`, so a listed file that is missing does not compile), but a file added to the
//! directory and forgotten in the list would silently never run.

use std::path::Path;

/// The `.sql` files in `dir` that `listed` does not name, sorted.
pub fn unlisted(dir: &Path, listed: &[&str]) -> std::io::Result<Vec<String>> {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && !listed.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    missing.sort();
    Ok(missing)
}

/// Listed migrations whose version is not the number their file name starts with (`0003_x.sql` is version 3).
pub fn misnumbered(listed: &[(u32, &str)]) -> Vec<String> {
    listed
        .iter()
        .filter(|(version, name)| {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok() != Some(*version)
        })
        .map(|(version, name)| format!("{version} => {name}"))
        .collect()
}

/// Fails naming each `.sql` file of `<service_dir>/migrations` that `listed` (version, file name) leaves out, and
/// each listed migration whose version is not its file's number.
pub fn assert_listed(service_dir: &str, list_name: &str, listed: &[(u32, &str)]) {
    let dir = Path::new(service_dir).join("migrations");
    let names: Vec<&str> = listed.iter().map(|(_, name)| *name).collect();
    let missing = unlisted(&dir, &names).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    assert!(
        missing.is_empty(),
        "{} holds migrations that {list_name} does not list, so they would never run: {}",
        dir.display(),
        missing.join(", ")
    );
    let wrong = misnumbered(listed);
    assert!(
        wrong.is_empty(),
        "{list_name} gives these migrations a version other than their file's number: {}",
        wrong.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_missing_from_the_list_are_named() {
        let dir = std::env::temp_dir().join(format!("almoner-migrations-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        for name in ["0001_a.sql", "0002_b.sql", "0003_c.sql", "README.md"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let found = unlisted(&dir, &["0001_a.sql", "0003_c.sql"]);
        let everything = unlisted(&dir, &["0001_a.sql", "0002_b.sql", "0003_c.sql"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), ["0002_b.sql"]);
        assert!(everything.unwrap().is_empty());
    }

    #[test]
    fn versions_must_be_the_file_numbers() {
        assert!(misnumbered(&[(1, "0001_a.sql"), (12, "0012_b.sql")]).is_empty());
        assert_eq!(misnumbered(&[(2, "0003_c.sql"), (4, "d.sql")]), ["2 => 0003_c.sql", "4 => d.sql"]);
    }
}
