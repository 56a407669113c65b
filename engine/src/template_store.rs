//! The persisted template store: templates and sampling state survive restarts. A JSON file,
//! written atomically (temporary file, fsync, rename) by the collector every
//! `template_store_interval` and at shutdown, loaded into every worker at start.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use ferroflow_codecs::decoder::StoredTemplate;
use ferroflow_codecs::template::WireField;
use ferroflow_codecs::Decoder;
use serde::{Deserialize, Serialize};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateEntry {
    pub exporter: SocketAddr,
    pub version: u16,
    pub domain: u32,
    pub template_id: u16,
    pub is_options: bool,
    /// (element id, enterprise number, length, scope)
    pub fields: Vec<(u16, u32, u16, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingEntry {
    pub exporter: SocketAddr,
    pub version: u16,
    pub domain: u32,
    pub sampler_id: Option<u64>,
    pub rate: u32,
}

/// What one worker (or the merged file) holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    pub format: u32,
    pub templates: Vec<TemplateEntry>,
    pub sampling: Vec<SamplingEntry>,
}

impl StoreSnapshot {
    pub fn from_decoder(d: &Decoder) -> Self {
        StoreSnapshot {
            format: FORMAT_VERSION,
            templates: d
                .export_templates()
                .into_iter()
                .map(|t| TemplateEntry {
                    exporter: t.exporter,
                    version: t.version,
                    domain: t.domain,
                    template_id: t.template_id,
                    is_options: t.is_options,
                    fields: t
                        .fields
                        .iter()
                        .map(|f| (f.id, f.enterprise, f.len, f.scope))
                        .collect(),
                })
                .collect(),
            sampling: d
                .export_sampling()
                .into_iter()
                .map(
                    |(exporter, version, domain, sampler_id, rate)| SamplingEntry {
                        exporter,
                        version,
                        domain,
                        sampler_id,
                        rate,
                    },
                )
                .collect(),
        }
    }

    /// Load into a decoder as if received at `now_ns`; returns the templates loaded.
    pub fn import_into(&self, d: &mut Decoder, now_ns: u64) -> usize {
        let templates: Vec<StoredTemplate> = self
            .templates
            .iter()
            .map(|t| StoredTemplate {
                exporter: t.exporter,
                version: t.version,
                domain: t.domain,
                template_id: t.template_id,
                is_options: t.is_options,
                fields: t
                    .fields
                    .iter()
                    .map(|&(id, enterprise, len, scope)| WireField {
                        id,
                        enterprise,
                        len,
                        scope,
                    })
                    .collect(),
            })
            .collect();
        let n = d.import_templates(&templates, now_ns);
        let sampling: Vec<_> = self
            .sampling
            .iter()
            .map(|s| (s.exporter, s.version, s.domain, s.sampler_id, s.rate))
            .collect();
        d.import_sampling(&sampling, now_ns);
        n
    }
}

/// Merge worker snapshots (later entries win for the same key).
pub fn merge<'a>(snaps: impl Iterator<Item = &'a StoreSnapshot>) -> StoreSnapshot {
    let mut t = std::collections::BTreeMap::new();
    let mut s = std::collections::BTreeMap::new();
    for snap in snaps {
        for e in &snap.templates {
            t.insert((e.exporter, e.version, e.domain, e.template_id), e.clone());
        }
        for e in &snap.sampling {
            s.insert((e.exporter, e.version, e.domain, e.sampler_id), e.clone());
        }
    }
    StoreSnapshot {
        format: FORMAT_VERSION,
        templates: t.into_values().collect(),
        sampling: s.into_values().collect(),
    }
}

/// `Ok(None)` when the file does not exist yet.
pub fn load(path: &Path) -> std::io::Result<Option<StoreSnapshot>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let snap: StoreSnapshot = serde_json::from_slice(&data).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a template store: {e}"),
        )
    })?;
    if snap.format != FORMAT_VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "template store format {} (this build reads {FORMAT_VERSION})",
                snap.format
            ),
        ));
    }
    Ok(Some(snap))
}

/// Write atomically: a temporary file next to `path`, fsync, rename.
pub fn save(path: &Path, snap: &StoreSnapshot) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(snap).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("ff-store-{}", std::process::id()));
        let path = dir.join("templates.json");
        assert_eq!(load(&path).unwrap(), None);
        let snap = StoreSnapshot {
            format: FORMAT_VERSION,
            templates: vec![TemplateEntry {
                exporter: "192.0.2.1:2055".parse().unwrap(),
                version: 10,
                domain: 1,
                template_id: 256,
                is_options: false,
                fields: vec![(8, 0, 4, false), (12, 0, 4, false)],
            }],
            sampling: vec![SamplingEntry {
                exporter: "192.0.2.1:2055".parse().unwrap(),
                version: 10,
                domain: 1,
                sampler_id: Some(3),
                rate: 100,
            }],
        };
        save(&path, &snap).unwrap();
        assert_eq!(load(&path).unwrap(), Some(snap.clone()));
        let mut d = Decoder::default();
        assert_eq!(snap.import_into(&mut d, 1), 1);
        assert_eq!(StoreSnapshot::from_decoder(&d), snap);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
