/// Every `migrations/*.sql` file must be in `db::MIGRATIONS`, with its file's number as its version: a file left
/// out would never run.
#[test]
fn every_migration_file_is_in_the_migration_list() {
    let listed: Vec<(u32, &str)> = messaging::db::MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
    almoner_testkit::migrations::assert_listed(env!("CARGO_MANIFEST_DIR"), "messaging::db::MIGRATIONS", &listed);
}
