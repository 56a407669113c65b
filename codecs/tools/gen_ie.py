#!/usr/bin/env python3
"""Generate the information-element tables of ferroflow-codecs.

Inputs (codecs/tools/data/, see README.md there for where each file comes from):
    ipfix-information-elements.csv  IANA IPFIX registry          -> codecs/src/ie/iana.rs
    netflow-v9.csv                  NetFlow v9-only field types  -> codecs/src/ie/v9.rs
    enterprise.csv                  enterprise-specific elements -> codecs/src/ie/enterprise.rs

Names are turned into snake_case exactly as Elastic's NetFlow input (filebeat `netflow`, the
Elastic Agent NetFlow integration) does it, so the documents carry the same `netflow.*` field
names as Elastic's own collector.

Usage:
    python3 codecs/tools/gen_ie.py           # rewrite the three .rs files
    python3 codecs/tools/gen_ie.py --check   # exit 1 if they are not up to date (for CI)

Standard library only.
"""

import argparse
import csv
import re
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
DATA = TOOLS / "data"
IE_DIR = TOOLS.parent / "src" / "ie"
COMMAND = "python3 codecs/tools/gen_ie.py"

# Abstract data types (RFC 7012 section 3.1, RFC 6313, RFC 9740) -> `IeType` variants.
TYPES = {
    "octetarray": "OctetArray",
    "unsigned8": "Unsigned8",
    "unsigned16": "Unsigned16",
    "unsigned32": "Unsigned32",
    "unsigned64": "Unsigned64",
    # RFC 9740 bit sets (ipv6ExtensionHeadersFull, tcpOptionsFull, udpSafeOptions): wider than
    # any integer we decode, sent with reduced-size encoding; kept as raw bytes.
    "unsigned256": "OctetArray",
    "signed8": "Signed8",
    "signed16": "Signed16",
    "signed32": "Signed32",
    "signed64": "Signed64",
    "float32": "Float32",
    "float64": "Float64",
    "boolean": "Boolean",
    "macaddress": "MacAddress",
    "string": "String",
    "datetimeseconds": "DateTimeSeconds",
    "datetimemilliseconds": "DateTimeMilliseconds",
    "datetimemicroseconds": "DateTimeMicroseconds",
    "datetimenanoseconds": "DateTimeNanoseconds",
    "ipv4address": "Ipv4Address",
    "ipv6address": "Ipv6Address",
    "basiclist": "BasicList",
    "subtemplatelist": "SubTemplateList",
    "subtemplatemultilist": "SubTemplateMultiList",
}

# Names Elastic special-cases instead of running them through the rule below
# (x-pack/filebeat/input/netflow/convert/case.go, `fieldNameConverter`).
ELASTIC_OVERRIDES = {
    "VRFname": "vrf_name",
}

# NetFlow v9 has no enterprise bit. Exporters put their own elements in the upper half of the
# 16-bit field type space instead; these are derived from the enterprise tables:
#   nProbe: field type = 57472 (NTOP_BASE_ID) + element id of PEN 35632.
NTOP_PEN = 35632
NTOP_V9_BASE = 57472
#   Cisco AVC / Performance Monitor: field type = 32768 + element id of PEN 9, for the elements
#   Cisco documents in v9 (libfds netflowExtra.xml, from Cisco's AVC metric definition guide).
CISCO_PEN = 9
CISCO_V9_BASE = 32768
CISCO_V9_IDS = [
    4315, 4316, 4318, 4324, 8232, 9252, 9253, 9268, 9272, 9273, 9274, 9275, 9292, 9293, 9294,
    9295, 9296, 9297, 9298, 9299, 9300, 9303, 9304, 9305, 9306, 9307, 9308, 9309, 9310, 9311,
    9313, 9314, 9315, 9316, 9317, 9318, 9319, 9320, 9321, 9360, 9361, 12236, 12237, 12238,
    12239, 12240, 12241, 12242,
]

# Rust constant name and vendor name of each private enterprise number in enterprise.csv.
VENDORS = {
    9: ("CISCO", "Cisco Systems"),
    637: ("NOKIA", "Nokia (Alcatel-Lucent)"),
    2636: ("JUNIPER", "Juniper Networks"),
    3054: ("IXIA", "Ixia (Keysight)"),
    5951: ("NETSCALER", "Citrix NetScaler"),
    6871: ("CERT", "CERT/NetSA (YAF)"),
    6876: ("VMWARE", "VMware"),
    9789: ("ASTARO", "Sophos (Astaro)"),
    10704: ("BARRACUDA", "Barracuda Networks"),
    12326: ("BARRACUDA_PHION", "Barracuda (phion)"),
    15397: ("PROCERA", "Procera Networks (Sandvine)"),
    21373: ("NETFILTER", "netfilter/iptables (ipt_NETFLOW)"),
    35632: ("NTOP", "ntop (nProbe)"),
    41916: ("VIPTELA", "Cisco Viptela"),
}

NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


def elastic_snake_case(name: str) -> str:
    """Port of CamelCaseToSnakeCase in elastic/beats x-pack/filebeat/input/netflow/convert/case.go.

    A run of upper-case letters is one word, except that its last letter starts the next word
    when a lower-case letter follows a run of three or more (postNATSourceIPv4Address ->
    post_nat_source_ipv4_address). Digits do not split (layer2packetSectionOffset ->
    layer2packet_section_offset). Names that already contain '_' are only lower-cased.
    """
    if name in ELASTIC_OVERRIDES:
        return ELASTIC_OVERRIDES[name]
    if "_" in name:
        return name.lower()
    out = []
    upper_count = 1
    for ch in name:
        lower = ch.lower()
        if lower != ch:
            if upper_count == 0:
                out.append("_")
            upper_count += 1
        else:
            if upper_count > 2:
                out.append("_")
                out[-1], out[-2] = out[-2], out[-1]
            upper_count = 0
        out.append(lower)
    return "".join(out)


# Conversions Elastic documents or ships (fields.yml / docs of the netflow integration).
ELASTIC_EXAMPLES = {
    "octetDeltaCount": "octet_delta_count",
    "postMCastPacketDeltaCount": "post_mcast_packet_delta_count",
    "postNATSourceIPv4Address": "post_nat_source_ipv4_address",
    "selectorIDTotalFlowsObserved": "selector_id_total_flows_observed",
    "layer2packetSectionOffset": "layer2packet_section_offset",
    "IPSecSPI": "ip_sec_spi",
    "VRFname": "vrf_name",
    "XlateSourceAddressIPV4": "xlate_source_address_ip_v4",
    "FW_Rule": "fw_rule",
    "minimumTTL": "minimum_ttl",
}


def self_test():
    for camel, snake in ELASTIC_EXAMPLES.items():
        got = elastic_snake_case(camel)
        if got != snake:
            sys.exit(f"elastic_snake_case({camel!r}) = {got!r}, expected {snake!r}")


def rust_type(ty: str, where: str) -> str:
    try:
        return TYPES[ty.strip().lower()]
    except KeyError:
        sys.exit(f"{where}: unknown abstract data type {ty!r}")


def data_rows(path: Path):
    """Rows of a CSV file, skipping '#' comment lines and the header row."""
    with path.open(newline="", encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    rows = list(csv.reader(lines))
    return rows[1:]


def read_iana():
    """(id, name, type) of every assigned, named element of the IANA registry copy.

    Reserved, unassigned and "Assigned for NetFlow v9 compatibility" ranges have no abstract data
    type; deprecated elements without a name (416, 419) cannot be named either. Both are skipped.
    Deprecated elements that do have a name are kept: exporters still send them.
    """
    path = DATA / "ipfix-information-elements.csv"
    out = []
    for n, row in enumerate(data_rows(path), start=2):
        ident, name, ty = row[0].strip(), row[1].strip(), row[2].strip()
        if not ident.isdigit() or not ty or not name:
            continue
        out.append((int(ident), name, rust_type(ty, f"{path.name}:{n}")))
    return out


def read_v9():
    path = DATA / "netflow-v9.csv"
    out = []
    for n, row in enumerate(data_rows(path), start=2):
        out.append((int(row[0]), row[1].strip(), rust_type(row[2], f"{path.name}:{n}")))
    return out


def read_enterprise():
    """{pen: [(id, name, type)]}"""
    path = DATA / "enterprise.csv"
    out = {}
    for n, row in enumerate(data_rows(path), start=2):
        pen, ident = int(row[0]), int(row[1])
        if pen not in VENDORS:
            sys.exit(f"{path.name}:{n}: PEN {pen} has no entry in VENDORS")
        if not 0 <= ident <= 0x7FFF:
            sys.exit(f"{path.name}:{n}: element id {ident} out of range")
        out.setdefault(pen, []).append(
            (ident, row[2].strip(), rust_type(row[3], f"{path.name}:{n}"))
        )
    return out


def finish(elements, what):
    """Convert names, sort by id, check ids unique and names well-formed."""
    table = sorted((i, elastic_snake_case(name), ty) for i, name, ty in elements)
    for a, b in zip(table, table[1:]):
        if a[0] == b[0]:
            sys.exit(f"{what}: element {a[0]} defined twice ({a[1]}, {b[1]})")
    for i, name, _ in table:
        if not NAME_RE.match(name):
            sys.exit(f"{what}: element {i}: bad name {name!r}")
        if not 0 <= i <= 0xFFFF:
            sys.exit(f"{what}: element id {i} out of range")
    return table


def header(sources, doc):
    lines = [
        f"// @generated by `{COMMAND}` from {', '.join(sources)}.",
        "// Do not edit: change the data under codecs/tools/data/ or the generator, then regenerate.",
        "",
    ]
    lines += [f"//! {d}" if d else "//!" for d in doc]
    return "\n".join(lines) + "\n"


def table_lines(table):
    return [f'    IeInfo {{ id: {i}, name: "{name}", ty: IeType::{ty} }},' for i, name, ty in table]


def gen_iana(iana):
    doc = [
        "IANA IPFIX information elements: every assigned element of the registry, deprecated ones",
        f"included ({len(iana)} elements), with the names in snake_case as Elastic writes them.",
    ]
    out = header(["codecs/tools/data/ipfix-information-elements.csv"], doc)
    out += "\nuse super::{IeInfo, IeType};\n\n#[rustfmt::skip]\npub(super) static TABLE: &[IeInfo] = &[\n"
    out += "\n".join(table_lines(iana)) + "\n];\n"
    return out


def gen_v9(v9):
    doc = [
        "NetFlow v9 field types that the IANA registry does not define: Cisco ASA NSEL and IOS",
        "firewall logging, Cisco AVC (32768 + the PEN 9 element id), nProbe (57472 + the PEN 35632",
        "element id), StreamCore and PAN-OS. Every other type is looked up in the IANA table.",
    ]
    out = header(
        ["codecs/tools/data/netflow-v9.csv", "codecs/tools/data/enterprise.csv"], doc
    )
    out += "\nuse super::{IeInfo, IeType};\n\n#[rustfmt::skip]\npub(super) static TABLE: &[IeInfo] = &[\n"
    out += "\n".join(table_lines(v9)) + "\n];\n"
    return out


def gen_enterprise(tables):
    total = sum(len(t) for t in tables.values())
    doc = [
        f"Enterprise-specific information elements ({total} elements of {len(tables)} enterprises),",
        "one table per private enterprise number, names in snake_case as Elastic writes them.",
        "Reverse elements (PEN 29305, RFC 5103) are not listed: they are `reverse_` + the IANA name.",
    ]
    out = header(["codecs/tools/data/enterprise.csv"], doc)
    out += "\nuse super::{IeInfo, IeType};\n\n"
    out += "/// Element `id` of private enterprise `pen`.\n"
    out += "pub(super) fn lookup(pen: u32, id: u16) -> Option<&'static IeInfo> {\n"
    out += "    let i = VENDORS.binary_search_by_key(&pen, |v| v.pen).ok()?;\n"
    out += "    super::lookup(VENDORS[i].table, id)\n}\n\n"
    out += "/// One enterprise's elements, sorted by id.\n"
    out += "pub(super) struct Vendor {\n"
    out += "    pub(super) pen: u32,\n"
    out += "    pub(super) table: &'static [IeInfo],\n}\n\n"
    out += "/// Sorted by private enterprise number.\n#[rustfmt::skip]\n"
    out += "pub(super) static VENDORS: &[Vendor] = &[\n"
    for pen in sorted(tables):
        const, vendor = VENDORS[pen]
        out += f"    Vendor {{ pen: {pen}, table: {const} }}, // {vendor}\n"
    out += "];\n"
    for pen in sorted(tables):
        const, vendor = VENDORS[pen]
        out += f"\n/// {vendor}, PEN {pen}.\n#[rustfmt::skip]\nstatic {const}: &[IeInfo] = &[\n"
        out += "\n".join(table_lines(tables[pen])) + "\n];\n"
    return out


def build():
    iana = finish(read_iana(), "IANA")
    enterprise = {pen: finish(t, f"PEN {pen}") for pen, t in read_enterprise().items()}

    v9_elements = read_v9()
    for ident, name, ty in enterprise[NTOP_PEN]:
        v9_elements.append((NTOP_V9_BASE + ident, name, ty))
    cisco = {ident: (name, ty) for ident, name, ty in enterprise[CISCO_PEN]}
    for ident in CISCO_V9_IDS:
        name, ty = cisco[ident]
        v9_elements.append((CISCO_V9_BASE + ident, name, ty))
    v9 = finish(v9_elements, "NetFlow v9")
    iana_ids = {i for i, _, _ in iana}
    for i, name, _ in v9:
        if i in iana_ids:
            sys.exit(f"NetFlow v9 type {i} ({name}) is an IANA element; v9 uses the IANA meaning")

    return {
        IE_DIR / "iana.rs": gen_iana(iana),
        IE_DIR / "v9.rs": gen_v9(v9),
        IE_DIR / "enterprise.rs": gen_enterprise(enterprise),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args()
    self_test()
    stale = []
    for path, text in build().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        names = ", ".join(str(p.relative_to(TOOLS.parent.parent)) for p in stale)
        sys.exit(f"stale generated files: {names}; run `{COMMAND}`")


if __name__ == "__main__":
    main()
