// `sqlx::migrate!()` embeds the migration files at compile time; without this hint cargo
// would not rebuild when only a migration changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
