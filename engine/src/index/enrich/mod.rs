//! The filtering stage (`--enrich`): the document is parsed in place with simd-json (a copy of
//! the message in a per-thread scratch buffer, the DOM borrowing from it), fields are added,
//! and it is re-encoded into the bulk body. Added fields (mapped by the index template):
//!
//! | field | from |
//! |---|---|
//! | `network.transport` | IANA protocol keyword of `network.iana_number` when the collector gave none |
//! | `network.protocol` | IANA service name of `destination.port` (else `source.port`) for tcp/udp/sctp |
//! | `flow.tcp_flag_names` | names of the bits of `flow.tcp_flags` (`["SYN","ACK"]`) |
//! | `observer.ingress.interface.name`, `observer.egress.interface.name` | the per-exporter interface map, by `observer.ip` and ifIndex |
//! | `network.bytes`, `network.packets` (multiplied), `flow.scaled: true` | sampling renormalisation: when `flow.sampling_rate > 1` and the collector did not scale |
//! | `source.geo.*`, `destination.geo.*` (`country_iso_code`, `country_name`, `continent_code`, `city_name`, `location`) | MaxMind City / Country database |
//! | `source.as.number`, `source.as.organization.name` (and `destination.`) | MaxMind ASN database (the number only when the flow had none) |

pub mod iana;
#[doc(hidden)]
pub mod mmdb_writer;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use simd_json::prelude::Writable;
use simd_json::{BorrowedValue as Value, StaticNode};

use super::config::EnrichSettings;

type Object<'v> = simd_json::value::borrowed::Object<'v>;

/// Why the stage could not start, or could not handle one document.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("document is not valid JSON: {0}")]
    Parse(String),
    #[error("document is not a JSON object")]
    NotObject,
    #[error("writing the document: {0}")]
    Write(String),
}

impl EnrichError {
    /// A bad document stays bad; a database that cannot be loaded stays unloadable.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Per-thread buffers of the stage.
#[derive(Default)]
pub struct EnrichState {
    scratch: Vec<u8>,
    buffers: Option<simd_json::Buffers>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct GeoCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct GeoContinent<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct GeoCity<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct GeoLocation {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow, default)]
    country: Option<GeoCountry<'a>>,
    #[serde(borrow, default)]
    continent: Option<GeoContinent<'a>>,
    #[serde(borrow, default)]
    city: Option<GeoCity<'a>>,
    #[serde(default)]
    location: Option<GeoLocation>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

/// The loaded stage: databases and maps, shared read-only by the consumer threads.
pub struct Enricher {
    geo: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
    interfaces: HashMap<IpAddr, HashMap<u64, String>>,
    renormalize: bool,
}

fn load_mmdb(p: &Path) -> Result<maxminddb::Reader<Vec<u8>>, EnrichError> {
    maxminddb::Reader::open_readfile(p).map_err(|e| EnrichError::Load {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads the interface-name map: `{"<exporter ip>": {"<ifIndex>": "<name>"}}`.
pub fn load_interface_names(
    p: &Path,
) -> Result<HashMap<IpAddr, HashMap<u64, String>>, EnrichError> {
    let err = |m: String| EnrichError::Load {
        path: p.display().to_string(),
        message: m,
    };
    let text = std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?;
    let raw: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let mut out = HashMap::new();
    for (ip, ifs) in raw {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| err(format!("{ip:?} is not an IP address")))?;
        let mut m = HashMap::new();
        for (idx, name) in ifs {
            let idx: u64 = idx
                .parse()
                .map_err(|_| err(format!("{ip}: {idx:?} is not an ifIndex")))?;
            m.insert(idx, name);
        }
        out.insert(ip, m);
    }
    Ok(out)
}

fn get<'a, 'v>(o: &'a Object<'v>, path: &[&str]) -> Option<&'a Value<'v>> {
    let (first, rest) = path.split_first()?;
    let v = o.get(*first)?;
    if rest.is_empty() {
        Some(v)
    } else if let Value::Object(inner) = v {
        get(inner, rest)
    } else {
        None
    }
}

fn get_u64(o: &Object<'_>, path: &[&str]) -> Option<u64> {
    match get(o, path)? {
        Value::Static(StaticNode::U64(v)) => Some(*v),
        Value::Static(StaticNode::I64(v)) if *v >= 0 => Some(*v as u64),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn get_str<'a>(o: &'a Object<'_>, path: &[&str]) -> Option<&'a str> {
    match get(o, path)? {
        Value::String(s) => Some(s.as_ref()),
        _ => None,
    }
}

/// The object at `path` under `o`, created (and replacing a non-object) as needed.
fn obj_at<'a, 'v>(o: &'a mut Object<'v>, path: &[&'static str]) -> &'a mut Object<'v> {
    let Some((first, rest)) = path.split_first() else {
        return o;
    };
    let entry = o
        .entry(Cow::Borrowed(*first))
        .or_insert_with(|| Value::Object(Box::default()));
    if !matches!(entry, Value::Object(_)) {
        *entry = Value::Object(Box::default());
    }
    match entry {
        Value::Object(inner) => obj_at(inner, rest),
        _ => unreachable!("made an object above"),
    }
}

fn set<'v>(o: &mut Object<'v>, path: &[&'static str], key: &'static str, v: Value<'v>) {
    obj_at(o, path).insert(Cow::Borrowed(key), v);
}

fn s(v: &str) -> Value<'static> {
    Value::String(Cow::Owned(v.to_string()))
}

impl Enricher {
    pub fn load(s: &EnrichSettings) -> Result<Self, EnrichError> {
        Ok(Enricher {
            geo: s.geoip_db.as_deref().map(load_mmdb).transpose()?,
            asn: s.asn_db.as_deref().map(load_mmdb).transpose()?,
            interfaces: match &s.interface_names {
                Some(p) => load_interface_names(p)?,
                None => HashMap::new(),
            },
            renormalize: s.renormalize_sampling,
        })
    }

    /// Parses `payload` (a copy, in `st`'s scratch buffer), enriches it and appends the new
    /// document to `out`. On error `out` may hold a partial write: the caller truncates.
    pub fn enrich_into(
        &self,
        payload: &[u8],
        st: &mut EnrichState,
        out: &mut Vec<u8>,
    ) -> Result<(), EnrichError> {
        st.scratch.clear();
        st.scratch.extend_from_slice(payload);
        let buffers = st
            .buffers
            .get_or_insert_with(|| simd_json::Buffers::new(payload.len().max(1024)));
        let mut v = simd_json::value::borrowed::to_value_with_buffers(&mut st.scratch, buffers)
            .map_err(|e| EnrichError::Parse(e.to_string()))?;
        let Value::Object(root) = &mut v else {
            return Err(EnrichError::NotObject);
        };
        self.apply(root);
        v.write(out).map_err(|e| EnrichError::Write(e.to_string()))
    }

    /// Adds the fields to a parsed document.
    pub fn apply(&self, root: &mut Object<'_>) {
        // protocol and service names
        let proto = get_u64(root, &["network", "iana_number"])
            .or_else(|| get_u64(root, &["netflow", "protocol_identifier"]))
            .and_then(|p| u8::try_from(p).ok());
        if let Some(p) = proto {
            if get(root, &["network", "transport"]).is_none() {
                if let Some(name) = iana::protocol_name(p) {
                    set(root, &["network"], "transport", s(name));
                }
            }
        }
        let transport = get_str(root, &["network", "transport"]).map(str::to_string);
        if let Some(t) = transport
            .as_deref()
            .filter(|t| matches!(*t, "tcp" | "udp" | "sctp"))
        {
            let svc = get_u64(root, &["destination", "port"])
                .and_then(|p| iana::service_name(u16::try_from(p).ok()?, t))
                .or_else(|| {
                    get_u64(root, &["source", "port"])
                        .and_then(|p| iana::service_name(u16::try_from(p).ok()?, t))
                });
            if let (Some(name), None) = (svc, get(root, &["network", "protocol"])) {
                set(root, &["network"], "protocol", s(name));
            }
            if t == "tcp" {
                if let Some(f) = get_u64(root, &["flow", "tcp_flags"]) {
                    let names: Vec<Value<'_>> =
                        iana::tcp_flag_names(f).into_iter().map(s).collect();
                    set(root, &["flow"], "tcp_flag_names", Value::from(names));
                }
            }
        }

        // interface names
        if !self.interfaces.is_empty() {
            let exporter =
                get_str(root, &["observer", "ip"]).and_then(|x| x.parse::<IpAddr>().ok());
            if let Some(ifs) = exporter.and_then(|e| self.interfaces.get(&e)) {
                for dir in ["ingress", "egress"] {
                    if let Some(name) = get_u64(root, &["observer", dir, "interface", "id"])
                        .and_then(|i| ifs.get(&i))
                    {
                        let path: [&'static str; 3] = [
                            "observer",
                            if dir == "ingress" {
                                "ingress"
                            } else {
                                "egress"
                            },
                            "interface",
                        ];
                        set(root, &path, "name", s(name));
                    }
                }
            }
        }

        // sampling renormalisation
        if self.renormalize && get(root, &["flow", "scaled"]).is_none() {
            if let Some(rate) = get_u64(root, &["flow", "sampling_rate"]).filter(|r| *r > 1) {
                for f in ["bytes", "packets"] {
                    if let Some(v) = get_u64(root, &["network", f]) {
                        let key: &'static str = if f == "bytes" { "bytes" } else { "packets" };
                        set(root, &["network"], key, Value::from(v.saturating_mul(rate)));
                    }
                }
                set(root, &["flow"], "scaled", Value::from(true));
            }
        }

        // GeoIP / ASN
        if self.geo.is_some() || self.asn.is_some() {
            for side in ["source", "destination"] {
                let side: &'static str = if side == "source" {
                    "source"
                } else {
                    "destination"
                };
                let Some(ip) = get_str(root, &[side, "ip"]).and_then(|x| x.parse::<IpAddr>().ok())
                else {
                    continue;
                };
                self.geo_fields(root, side, ip);
                self.asn_fields(root, side, ip);
            }
        }
    }

    fn geo_fields(&self, root: &mut Object<'_>, side: &'static str, ip: IpAddr) {
        let Some(db) = &self.geo else { return };
        let Ok(r) = db.lookup(ip) else { return };
        let Ok(Some(g)) = r.decode::<GeoRecord<'_>>() else {
            return;
        };
        let mut geo: Vec<(&'static str, Value<'static>)> = Vec::new();
        if let Some(c) = &g.country {
            if let Some(iso) = c.iso_code {
                geo.push(("country_iso_code", s(iso)));
            }
            if let Some(n) = c.names.as_ref().and_then(|n| n.en) {
                geo.push(("country_name", s(n)));
            }
        }
        if let Some(code) = g.continent.as_ref().and_then(|c| c.code) {
            geo.push(("continent_code", s(code)));
        }
        if let Some(n) = g
            .city
            .as_ref()
            .and_then(|c| c.names.as_ref())
            .and_then(|n| n.en)
        {
            geo.push(("city_name", s(n)));
        }
        if let Some(GeoLocation {
            latitude: Some(lat),
            longitude: Some(lon),
        }) = g.location
        {
            let mut loc = Object::default();
            loc.insert(Cow::Borrowed("lat"), Value::from(lat));
            loc.insert(Cow::Borrowed("lon"), Value::from(lon));
            geo.push(("location", Value::Object(Box::new(loc))));
        }
        for (k, v) in geo {
            set(root, &[side, "geo"], k, v);
        }
    }

    fn asn_fields(&self, root: &mut Object<'_>, side: &'static str, ip: IpAddr) {
        let Some(db) = &self.asn else { return };
        let Ok(r) = db.lookup(ip) else { return };
        let Ok(Some(a)) = r.decode::<AsnRecord<'_>>() else {
            return;
        };
        if let Some(n) = a.autonomous_system_number {
            if get(root, &[side, "as", "number"]).is_none() {
                set(root, &[side, "as"], "number", Value::from(u64::from(n)));
            }
        }
        if let Some(org) = a.autonomous_system_organization {
            set(root, &[side, "as", "organization"], "name", s(org));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mmdb_writer::{MmdbValue, MmdbWriter};
    use super::*;

    /// A file name of its own per call (the tests run in parallel).
    fn tmp(name: &str) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("ff-enrich-{}-{k}-{name}", std::process::id()))
    }

    fn enricher() -> Enricher {
        let mut geo = MmdbWriter::new("GeoLite2-City");
        geo.insert(
            "198.51.100.0".parse().unwrap(),
            24,
            &MmdbValue::map([
                (
                    "country",
                    MmdbValue::map([
                        ("iso_code", MmdbValue::str("NL")),
                        (
                            "names",
                            MmdbValue::map([("en", MmdbValue::str("Netherlands"))]),
                        ),
                    ]),
                ),
                (
                    "continent",
                    MmdbValue::map([("code", MmdbValue::str("EU"))]),
                ),
                (
                    "city",
                    MmdbValue::map([(
                        "names",
                        MmdbValue::map([("en", MmdbValue::str("Amsterdam"))]),
                    )]),
                ),
                (
                    "location",
                    MmdbValue::map([
                        ("latitude", MmdbValue::F64(52.37)),
                        ("longitude", MmdbValue::F64(4.89)),
                    ]),
                ),
            ]),
        );
        let mut asn = MmdbWriter::new("GeoLite2-ASN");
        asn.insert(
            "2001:db8::".parse().unwrap(),
            32,
            &MmdbValue::map([
                ("autonomous_system_number", MmdbValue::U32(64500)),
                (
                    "autonomous_system_organization",
                    MmdbValue::str("Example Net"),
                ),
            ]),
        );
        asn.insert(
            "198.51.100.0".parse().unwrap(),
            24,
            &MmdbValue::map([
                ("autonomous_system_number", MmdbValue::U32(64501)),
                ("autonomous_system_organization", MmdbValue::str("Doc Net")),
            ]),
        );
        let (g, a, i) = (tmp("city.mmdb"), tmp("asn.mmdb"), tmp("ifs.json"));
        std::fs::write(&g, geo.build()).unwrap();
        std::fs::write(&a, asn.build()).unwrap();
        std::fs::write(&i, r#"{"192.0.2.1": {"3": "ge-0/0/3", "7": "xe-1/0/0"}}"#).unwrap();
        let e = Enricher::load(&EnrichSettings {
            geoip_db: Some(g.clone()),
            asn_db: Some(a.clone()),
            interface_names: Some(i.clone()),
            renormalize_sampling: true,
        })
        .unwrap();
        for p in [g, a, i] {
            let _ = std::fs::remove_file(p);
        }
        e
    }

    fn run(e: &Enricher, doc: &str) -> serde_json::Value {
        let mut st = EnrichState::default();
        let mut out = Vec::new();
        e.enrich_into(doc.as_bytes(), &mut st, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn adds_every_field() {
        let e = enricher();
        let d = run(
            &e,
            r#"{"@timestamp":"2026-11-25T10:00:00.000000000Z","observer":{"ip":"192.0.2.1","ingress":{"interface":{"id":3}},"egress":{"interface":{"id":7}}},
               "source":{"ip":"198.51.100.7","port":51000},"destination":{"ip":"2001:db8::1","port":443},
               "network":{"iana_number":"6","bytes":1000,"packets":10},"flow":{"tcp_flags":18,"sampling_rate":100}}"#,
        );
        assert_eq!(d["network"]["transport"], "tcp");
        assert_eq!(d["network"]["protocol"], "https");
        assert_eq!(
            d["flow"]["tcp_flag_names"],
            serde_json::json!(["SYN", "ACK"])
        );
        assert_eq!(d["observer"]["ingress"]["interface"]["name"], "ge-0/0/3");
        assert_eq!(d["observer"]["egress"]["interface"]["name"], "xe-1/0/0");
        assert_eq!(d["network"]["bytes"], 100_000);
        assert_eq!(d["network"]["packets"], 1000);
        assert_eq!(d["flow"]["scaled"], true);
        assert_eq!(d["source"]["geo"]["country_iso_code"], "NL");
        assert_eq!(d["source"]["geo"]["country_name"], "Netherlands");
        assert_eq!(d["source"]["geo"]["city_name"], "Amsterdam");
        assert_eq!(d["source"]["geo"]["continent_code"], "EU");
        assert_eq!(d["source"]["geo"]["location"]["lat"], 52.37);
        assert_eq!(d["source"]["as"]["number"], 64501);
        assert_eq!(d["source"]["as"]["organization"]["name"], "Doc Net");
        assert_eq!(d["destination"]["as"]["number"], 64500);
        assert_eq!(
            d["destination"]["as"]["organization"]["name"],
            "Example Net"
        );
        assert!(d["destination"].get("geo").is_none());
        assert_eq!(d["@timestamp"], "2026-11-25T10:00:00.000000000Z");
    }

    #[test]
    fn keeps_what_is_there() {
        let e = enricher();
        let d = run(
            &e,
            r#"{"network":{"iana_number":"17","transport":"udp","bytes":5},"source":{"ip":"198.51.100.1","as":{"number":1}},"destination":{"port":53},"flow":{"sampling_rate":10,"scaled":true}}"#,
        );
        assert_eq!(d["network"]["protocol"], "domain");
        assert_eq!(d["network"]["bytes"], 5);
        assert_eq!(d["source"]["as"]["number"], 1);
        assert!(d["flow"].get("tcp_flag_names").is_none());
    }

    #[test]
    fn bad_documents_are_errors() {
        let e = enricher();
        let mut st = EnrichState::default();
        let mut out = Vec::new();
        assert!(e.enrich_into(b"{\"a\":", &mut st, &mut out).is_err());
        assert!(matches!(
            e.enrich_into(b"[1,2]", &mut st, &mut out),
            Err(EnrichError::NotObject)
        ));
    }
}
