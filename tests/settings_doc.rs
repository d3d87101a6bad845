//! docs/settings.md is the settings table of `src/config` rendered as Markdown; this test keeps
//! the two in step. After changing a setting, regenerate the page with
//! `MDE_RELAY_BLESS=1 cargo test --test settings_doc`.

use mde_relay::config::SETTINGS;

fn render() -> String {
    let mut s = String::from(
        "# Settings\n\n\
         Every setting the binary reads. In Azure they are app settings (the Bicep template in \
         `infra/` sets them); locally they are environment variables, and `mde-relay process` \
         also takes the sink and batch settings as flags (`mde-relay process --help`). A bad \
         value stops start-up with a message naming the setting. Secret settings are never \
         logged and never appear in deployment outputs.\n\n\
         This page is generated from `src/config/mod.rs` (`MDE_RELAY_BLESS=1 cargo test --test \
         settings_doc`).\n\n\
         | setting | default | required in Azure | secret | what it does |\n\
         |---|---|---|---|---|\n",
    );
    for st in SETTINGS {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            st.name,
            st.default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into()),
            if st.required_in_azure { "yes" } else { "" },
            if st.secret { "yes" } else { "" },
            st.doc.replace('|', "\\|")
        ));
    }
    s
}

#[test]
fn settings_page_matches_the_settings_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/settings.md");
    let want = render();
    if std::env::var_os("MDE_RELAY_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/settings.md is out of date with src/config/mod.rs: run `MDE_RELAY_BLESS=1 cargo test --test settings_doc`"
    );
}
