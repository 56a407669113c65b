//! docs/schema.md is the schema: every field it lists is emitted by the corpus (with and
//! without `--scale-sampling`), every field the corpus produces outside `netflow.*` is listed,
//! and the documents of each kind carry the fields every document of that kind must have.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn documented() -> BTreeSet<String> {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md"))
        .unwrap();
    let mut out = BTreeSet::new();
    for line in md.lines() {
        let Some(first) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        for part in first.split(", ") {
            if let Some(f) = part.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                out.insert(f.to_string());
            }
        }
    }
    out
}

fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, u64>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&p, x, out);
            }
        }
        _ => *out.entry(prefix.to_string()).or_default() += 1,
    }
}

fn corpus_docs(extra_args: &[&str]) -> Vec<Value> {
    let files = common::captures();
    let mut docs = Vec::new();
    // one file at a time: captures are independent streams
    for f in files {
        let out = Command::new(env!("CARGO_BIN_EXE_ferroflow"))
            .arg("decode")
            .arg("-q")
            .args(extra_args)
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success());
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            docs.push(serde_json::from_str(l).unwrap());
        }
    }
    docs
}

#[test]
fn every_documented_field_is_emitted_and_nothing_else() {
    let documented = documented();
    assert!(
        documented.len() > 100,
        "schema table not found: {documented:?}"
    );
    let mut seen = BTreeMap::new();
    let docs: Vec<Value> = corpus_docs(&[])
        .into_iter()
        .chain(corpus_docs(&["--scale-sampling"]))
        .collect();
    for d in &docs {
        walk("", d, &mut seen);
        // what every document has
        for k in [
            "/@timestamp",
            "/event/kind",
            "/event/action",
            "/observer/ip",
            "/flow/protocol",
            "/flow/exporter_port",
            "/flow/sampling_rate",
        ] {
            assert!(d.pointer(k).is_some(), "{k} missing in {d}");
        }
        if d["event"]["kind"] == "event" && d["flow"]["protocol"] != "sflow5" {
            assert!(d.pointer("/netflow").is_some(), "netflow.* missing in {d}");
            if d["flow"]["protocol"] != "netflow_v5" {
                assert!(
                    d.pointer("/flow/template_id").is_some(),
                    "template id missing in {d}"
                );
            }
        }
        if d["flow"]["protocol"] == "sflow5" {
            assert!(
                d.pointer("/sflow/agent").is_some() && d.pointer("/sflow/sample_type").is_some(),
                "{d}"
            );
        }
    }
    let emitted: BTreeSet<String> = seen
        .keys()
        .filter(|k| !k.starts_with("netflow."))
        .cloned()
        .collect();
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "emitted but not in docs/schema.md: {undocumented:?}"
    );
    let unseen: Vec<_> = documented
        .iter()
        .filter(|f| f.contains('.') || f.starts_with('@'))
        .filter(|f| !f.starts_with("netflow."))
        .filter(|f| !emitted.contains(*f))
        .collect();
    assert!(
        unseen.is_empty(),
        "documented but never emitted by the corpus: {unseen:?}"
    );
    // the raw elements are there too
    assert!(seen.keys().any(|k| k == "netflow.octet_delta_count"));
    assert!(seen.keys().any(|k| k.starts_with("netflow.reverse_")));
}
