//! `smcd clc decode` / `smcd clc encode`, run as a user runs them, over every
//! CLC test vector of `smcd-core/tests/vectors/` and hand-made input.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `smcd ARGS` with `stdin` fed in.
fn smcd(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smcd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smcd starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The binary may exit before reading everything (huge input): ignore EPIPE.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let out = child.wait_with_output().expect("smcd runs");
    let run = Run {
        code: out.status.code().expect("smcd exits normally (no signal)"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "smcd panicked: {}",
        run.stderr
    );
    run
}

/// Runs `smcd clc decode ARGS -` on `text`.
fn decode(args: &[&str], text: &str) -> Run {
    let mut all = vec!["clc", "decode"];
    all.extend_from_slice(args);
    all.push("-");
    smcd(&all, text.as_bytes())
}

/// Runs `smcd clc encode -` on `json`.
fn encode(json: &str) -> Run {
    smcd(&["clc", "encode", "-"], json.as_bytes())
}

/// Asserts exit status 2 with exactly one line on stderr containing `needle`,
/// and nothing on stdout.
fn assert_rejected(run: &Run, needle: &str) {
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "nothing on stdout for a rejected input");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{:?} lacks {needle:?}",
        run.stderr
    );
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../smcd-core/tests/vectors")
}

/// The vector files whose name starts with `prefix`, sorted.
fn vectors(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("vector directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(".hex")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {prefix}*.hex vectors");
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("vector readable")
}

/// The bytes of a vector file (hex pairs, whitespace, `#` comments).
fn vector_bytes(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|part| part.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("vector is hex"))
        .collect()
}

/// The `# expect:` line of a vector.
fn expect_line(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("# expect:"))
        .expect("vector has an expect line")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("decode --json prints JSON")
}

/// Valid CLC vectors plus the declined ones: all decode with exit 0.
fn decodable() -> Vec<PathBuf> {
    let mut files = vectors("clc-");
    files.extend(vectors("declined-"));
    files
}

#[test]
fn decode_json_then_encode_reproduces_every_valid_and_declined_vector() {
    for path in decodable() {
        let text = read(&path);
        let json = decode(&["--json"], &text);
        assert_eq!(json.code, 0, "{}: {}", path.display(), json.stderr);
        assert_eq!(
            json.stderr,
            "",
            "{}: no notes for a canonical vector",
            path.display()
        );
        let hex_out = encode(&json.stdout);
        assert_eq!(hex_out.code, 0, "{}: {}", path.display(), hex_out.stderr);
        assert_eq!(
            hex_out.stdout.trim_end(),
            hex(&vector_bytes(&text)),
            "{}: byte-for-byte round trip",
            path.display()
        );
    }
}

#[test]
fn human_output_lists_every_field_with_its_offset() {
    for path in decodable() {
        let text = read(&path);
        let run = decode(&[], &text);
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(lines[0].contains("well-formed"), "{}", lines[0]);
        let field_lines: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("0x"))
            .collect();
        assert!(
            field_lines.len() > 10,
            "{}: {} field lines",
            path.display(),
            field_lines.len()
        );
        let bytes = vector_bytes(&text);
        for line in &field_lines {
            let offset = usize::from_str_radix(&line[2..6], 16).expect("hex offset");
            assert!(offset < bytes.len(), "{line}: offset inside the message");
        }
        let last = field_lines.last().expect("fields");
        assert!(last.contains("trailer"), "{last}");
        assert!(
            last.starts_with(&format!("{:#06x}", bytes.len() - 4)),
            "{last}"
        );
    }
}

#[test]
fn human_output_explains_values() {
    let accept = decode(
        &[],
        &read(&vectors_dir().join("clc-accept-v2-fce-loopback.hex")),
    );
    let find = |field: &str| {
        accept
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(field))
            .unwrap_or_else(|| panic!("no line for {field}"))
            .to_owned()
    };
    assert!(find("header.eyecatcher").starts_with("0x0000"));
    assert!(find("dmbe_size").contains("65536 bytes"));
    assert!(find("chid").contains("loopback"));
    assert!(find("fce.hostname").contains("\"host1\""));
    assert!(find("fce.hostname").starts_with("0x004e"));
    let decline = decode(&[], &read(&vectors_dir().join("clc-decline-v2.hex")));
    assert!(
        decline.stdout.contains("0x03030007 NOSMCD2DEV"),
        "{}",
        decline.stdout
    );
}

/// Rule and byte offset each malformed vector must be rejected with.
const BAD: &[(&str, &str, usize)] = &[
    ("bad-accept-v2-short.hex", "A3", 5),
    ("bad-decline-v2-length-28.hex", "D1", 5),
    ("bad-proposal-eid-cnt-9.hex", "P4", 80),
    ("bad-proposal-iparea-offset-41.hex", "P1", 38),
    ("bad-proposal-length-plus1.hex", "P6", 5),
    ("bad-proposal-trailer.hex", "H4", 220),
    ("bad-proposal-v1-typev1-n.hex", "P3", 7),
    ("bad-proposal-v2-ext-offset-173.hex", "P4", 50),
];

#[test]
fn every_bad_vector_exits_2_naming_rule_offset_and_linux_behaviour() {
    let files = vectors("bad-");
    assert_eq!(
        files.len(),
        BAD.len(),
        "every bad vector has an expectation here"
    );
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let &(_, rule, offset) = BAD
            .iter()
            .find(|(file, _, _)| *file == name)
            .unwrap_or_else(|| panic!("{name} has no expectation in BAD"));
        let text = read(&path);
        assert!(
            expect_line(&text).contains("EPROTO"),
            "{name} expects a protocol error"
        );
        for args in [&[][..], &["--json"][..]] {
            let run = decode(args, &text);
            assert_rejected(&run, &format!("byte {offset}:"));
            assert!(
                run.stderr.contains(&format!("(rule {rule})")),
                "{name}: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains("protocol error (EPROTO): no Decline"),
                "{}",
                run.stderr
            );
        }
    }
}

#[test]
fn declined_vectors_decode_with_the_server_verdict_of_their_expect_line() {
    for path in vectors("declined-") {
        let text = read(&path);
        // e.g. "... must answer with Decline 0x03030008 (NOUEID): ..."
        let expect = expect_line(&text);
        let after = &expect[expect.find("Decline 0x").expect("expect names a Decline") + 8..];
        let code = u32::from_str_radix(&after[2..10], 16).expect("hex code");
        let name =
            after[after.find('(').expect("name") + 1..after.find(')').expect("name")].to_owned();

        let json = json_of(&decode(&["--json"], &text));
        let verdict = &json["server_verdict"];
        assert_eq!(verdict["peer_diagnosis"], code, "{}", path.display());
        assert_eq!(verdict["name"], name.as_str(), "{}", path.display());

        let human = decode(&[], &text);
        assert!(
            human
                .stdout
                .contains(&format!("Decline {name} ({code:#010x}")),
            "{}",
            human.stdout
        );
    }
    for path in vectors("clc-proposal-") {
        let json = json_of(&decode(&["--json"], &read(&path)));
        assert!(
            json.get("server_verdict").is_none(),
            "{}: accepted",
            path.display()
        );
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const HEADER: &[&str] = &[
    "eyecatcher",
    "type",
    "length",
    "version",
    "typev2",
    "typev1",
];

#[test]
fn json_keys_are_exactly_the_field_names_of_the_spec() {
    let json = |file: &str| json_of(&decode(&["--json"], &read(&vectors_dir().join(file))));

    // Proposal v1 with the IP prefix area.
    let p1 = json("clc-proposal-v1-smcd.hex");
    let proposal_top = [
        "kind",
        "header",
        "id_for_peer",
        "gid",
        "mac",
        "iparea_offset",
        "ism_gid",
        "ism_chid",
        "v2_ext_offset",
        "vendor_oui",
        "vendor_exp_options",
        "trailer",
    ];
    let mut with_prefix = proposal_top.to_vec();
    with_prefix.push("ip_prefix");
    assert_eq!(keys(&p1), set(&with_prefix));
    assert_eq!(p1["kind"], "proposal");
    assert_eq!(keys(&p1["header"]), set(HEADER));
    assert_eq!(
        keys(&p1["ip_prefix"]),
        set(&[
            "outgoing_subnet",
            "prefix_len",
            "ipv6_prefixes_cnt",
            "ipv6_prefixes"
        ])
    );
    assert_eq!(p1["ip_prefix"]["outgoing_subnet"], "c0a80100");
    assert_eq!(p1["ism_gid"], 0x1122_3344_5566_7788u64);

    // Proposal v2 with both extensions.
    let p2 = json("clc-proposal-v2-loopback.hex");
    let mut with_ext = proposal_top.to_vec();
    with_ext.extend(["v2_ext", "smcd_v2_ext"]);
    assert_eq!(keys(&p2), set(&with_ext));
    assert_eq!(
        keys(&p2["v2_ext"]),
        set(&[
            "eid_cnt",
            "ism_gid_cnt",
            "release",
            "seid",
            "smcd_v2_ext_offset",
            "roce",
            "max_conns",
            "max_links",
            "feature_mask",
            "user_eids",
        ])
    );
    assert_eq!(p2["v2_ext"]["user_eids"], serde_json::json!(["SMCD-TEST"]));
    assert_eq!(keys(&p2["smcd_v2_ext"]), set(&["system_eid", "gidchid"]));
    assert_eq!(p2["smcd_v2_ext"]["system_eid"], "");
    let entries = p2["smcd_v2_ext"]["gidchid"].as_array().expect("list");
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(keys(entry), set(&["gid", "chid"]));
        assert_eq!(entry["chid"], 0xffff);
    }
    // u64 values above i64::MAX stay exact numbers.
    assert_eq!(entries[1]["gid"], 0xfedc_ba98_7654_3210u64);

    // Accept v2 with a release-1 first-contact extension.
    let a2 = json("clc-accept-v2-fce-loopback.hex");
    let accept_v1 = [
        "kind",
        "header",
        "gid",
        "token",
        "dmbe_idx",
        "dmbe_size",
        "linkid",
        "trailer",
        "derived",
    ];
    let mut accept_v2 = accept_v1.to_vec();
    accept_v2.extend(["chid", "eid", "gid_ext"]);
    let mut accept_v2_fce = accept_v2.clone();
    accept_v2_fce.push("fce");
    assert_eq!(keys(&a2), set(&accept_v2_fce));
    let mut header_fc = HEADER.to_vec();
    header_fc.push("first_contact");
    assert_eq!(keys(&a2["header"]), set(&header_fc));
    assert_eq!(
        keys(&a2["fce"]),
        set(&[
            "v2_direct",
            "os_type",
            "release",
            "hostname",
            "max_conns",
            "max_links",
            "feature_mask",
            "vendor_exp_options",
        ])
    );
    assert_eq!(a2["fce"]["hostname"], "host1");
    assert_eq!(a2["eid"], "SMCD-TEST");
    assert_eq!(keys(&a2["derived"]), set(&["dmbe_size_bytes", "gid128"]));
    assert_eq!(a2["derived"]["dmbe_size_bytes"], 65536);
    assert_eq!(a2["derived"]["gid128"], "0123456789abcdeffedcba9876543210");

    // Confirm v2 without first contact, Accept v1.
    let c2 = json("clc-confirm-v2-loopback.hex");
    assert_eq!(c2["kind"], "confirm");
    assert_eq!(keys(&c2), set(&accept_v2));
    let a1 = json("clc-accept-v1-smcd.hex");
    assert_eq!(a1["kind"], "accept");
    assert_eq!(keys(&a1), set(&accept_v1));
    assert_eq!(keys(&a1["derived"]), set(&["dmbe_size_bytes"]));

    // Declines v1 and v2.
    let decline_v1 = [
        "kind",
        "header",
        "id_for_peer",
        "peer_diagnosis",
        "os_type",
        "trailer",
        "derived",
    ];
    let mut decline_v2 = decline_v1.to_vec();
    decline_v2.push("peer_diagnosis_v2");
    let d1 = json("clc-decline-v1-syncerr.hex");
    assert_eq!(d1["kind"], "decline");
    assert_eq!(keys(&d1), set(&decline_v1));
    let mut header_oos = HEADER.to_vec();
    header_oos.push("out_of_sync");
    assert_eq!(keys(&d1["header"]), set(&header_oos));
    assert_eq!(d1["header"]["out_of_sync"], true);
    let d2 = json("clc-decline-v2.hex");
    assert_eq!(keys(&d2), set(&decline_v2));
    assert_eq!(d2["peer_diagnosis"], 0x0303_0007);
    assert_eq!(d2["peer_diagnosis_v2"], serde_json::json!([0, 0, 0, 0]));
    assert_eq!(keys(&d2["derived"]), set(&["peer_diagnosis_name"]));
    assert_eq!(d2["derived"]["peer_diagnosis_name"], "NOSMCD2DEV");
}

#[test]
fn hex_argument_accepts_whitespace_case_and_comments() {
    let decline = "E2D4C3D9 04 001c 18  # header\n 0000000000000000 04000000 00 000000 e2d4c3d9";
    let from_arg = smcd(&["clc", "decode", "--json", decline], b"");
    let from_stdin = decode(&["--json"], decline);
    assert_eq!(json_of(&from_arg), json_of(&from_stdin));
    assert_eq!(
        json_of(&from_arg)["derived"]["peer_diagnosis_name"],
        "SYNCERR"
    );
}

#[test]
fn what_a_new_user_might_type_is_explained() {
    let cases: &[(&str, &str)] = &[
        (
            "e2d4",
            "byte 2: message incomplete: 2 bytes present, 8 needed",
        ),
        (
            "hello",
            "bad hex: character 'h' at text offset 0 is not a hex digit",
        ),
        ("e2d4c", "odd number of hex digits"),
        ("   ", "empty input"),
        ("# only a comment", "no hex digits"),
        (
            "00000000 01 0010 11",
            "byte 0: eyecatcher 00000000 is neither SMCR",
        ),
        (
            "e2d4c3d9 07 001c 18",
            "byte 4: type 7 is not a CLC message type",
        ),
        (
            "e2d4c3d9 04 001c 08",
            "byte 7: version 0 is below 1 (rule H1)",
        ),
        ("e2d4c3d9 01 0100 26", "256 needed"),
        (
            "e2d4c3d9 04 001c 18 0000000000000000 04000000 00000000 e2d4c3d9 ff",
            "1 byte(s) after the end of the message",
        ),
    ];
    for (input, needle) in cases {
        assert_rejected(&smcd(&["clc", "decode", input], b""), needle);
        assert_rejected(&decode(&["--json"], input), needle);
    }
    // Empty stdin, non-UTF-8 stdin, more than a CLC message can hold, more
    // than the input limit.
    assert_rejected(&decode(&[], ""), "empty input: stdin");
    assert_rejected(&smcd(&["clc", "decode", "-"], &[0xff, 0xfe]), "not UTF-8");
    assert_rejected(&decode(&[], &"00".repeat(70_000)), "at most 65535 bytes");
    assert_rejected(
        &smcd(&["clc", "decode", "-"], &vec![b'0'; 5 << 20]),
        "larger than",
    );
    // A file name where hex is expected.
    let file = vectors_dir().join("clc-decline-v2.hex");
    let file = file.to_str().expect("UTF-8 path");
    assert_rejected(&smcd(&["clc", "decode", file], b""), "smcd clc decode - <");
    // No argument: clap's usage error, also exit 2.
    let run = smcd(&["clc", "decode"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Usage"), "{}", run.stderr);
}

#[test]
fn valid_but_odd_messages_decode() {
    // A Decline with a code outside the table, and a trailer Linux does not check.
    let run = decode(
        &[],
        "e2d4c3d9 04 001c 10 0000000000000000 12345678 00000000 00000000",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("0x12345678: not a known reason code"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("neither SMCR nor SMCD"),
        "{}",
        run.stdout
    );

    // A v2 Accept, no first contact, 8 bytes longer than needed: the padding
    // is kept as `length`, so it still round-trips.
    let confirm = vector_bytes(&read(&vectors_dir().join("clc-confirm-v2-loopback.hex")));
    let mut padded = confirm[..74].to_vec();
    padded[6] = 86;
    padded.extend([0u8; 8]);
    padded.extend(&confirm[74..]);
    let json = decode(&["--json"], &hex(&padded));
    assert_eq!(json_of(&json)["header"]["length"], 86);
    assert_eq!(encode(&json.stdout).stdout.trim_end(), hex(&padded));

    // A non-zero reserved byte decodes, with a note that it does not survive
    // re-encoding.
    let mut reserved = confirm.clone();
    reserved[26] = 0xaa;
    let run = decode(&["--json"], &hex(&reserved));
    assert_eq!(run.code, 0);
    assert!(
        run.stderr
            .starts_with("note: re-encoding this JSON gives different bytes from byte 26"),
        "{}",
        run.stderr
    );
}

/// A JSON object from a vector, changed by `edit`.
fn edited(file: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut json = json_of(&decode(&["--json"], &read(&vectors_dir().join(file))));
    edit(&mut json);
    json.to_string()
}

#[test]
fn encode_errors_name_the_key() {
    let accept = "clc-accept-v2-fce-loopback.hex";
    let proposal = "clc-proposal-v2-loopback.hex";
    let cases: Vec<(String, &str)> = vec![
        ("{".to_owned(), "input is not valid JSON"),
        ("[1]".to_owned(), "expected an object, found a list"),
        (edited(accept, |j| j["kind"] = "hello".into()), "key `kind`"),
        (
            edited(accept, |j| _ = j.as_object_mut().map(|o| o.remove("token"))),
            "key `token`: missing",
        ),
        (
            edited(accept, |j| j["tokn"] = 1.into()),
            "key `tokn`: unknown key",
        ),
        (
            edited(accept, |j| j["dmbe_size"] = 16.into()),
            "key `dmbe_size`: expected an integer 0..=15, found 16",
        ),
        (
            edited(accept, |j| j["gid"] = (-1).into()),
            "key `gid`: expected an integer",
        ),
        (
            edited(accept, |j| j["linkid"] = "0a0b".into()),
            "key `linkid`: expected 4 bytes",
        ),
        (
            edited(accept, |j| j["fce"]["hostname"] = "h".repeat(33).into()),
            "key `fce.hostname`",
        ),
        (
            edited(accept, |j| j["header"]["first_contact"] = false.into()),
            "key `header.typev2`",
        ),
        (
            edited(accept, |j| j["header"]["type"] = 4.into()),
            "key `header.type`",
        ),
        (
            edited(accept, |j| j["header"]["version"] = 0.into()),
            "key `header.version`",
        ),
        (
            edited(accept, |j| j["header"]["length"] = 100.into()),
            "key `header.length`",
        ),
        (
            edited(proposal, |j| j["header"]["length"] = 225.into()),
            "key `header.length`: 225",
        ),
        (
            edited(proposal, |j| j["v2_ext"]["eid_cnt"] = 2.into()),
            "key `v2_ext.eid_cnt`: 2, but the list",
        ),
        (
            edited(proposal, |j| j["v2_ext"]["user_eids"][0] = 5.into()),
            "key `v2_ext.user_eids[0]`",
        ),
        (
            edited(proposal, |j| {
                j["smcd_v2_ext"]["gidchid"][1]["chid"] = 70000.into()
            }),
            "key `smcd_v2_ext.gidchid[1].chid`",
        ),
        (
            edited(proposal, |j| {
                _ = j.as_object_mut().map(|o| o.remove("v2_ext"))
            }),
            "key `v2_ext`: missing",
        ),
        (
            edited(proposal, |j| j["header"]["typev2"] = 2.into()),
            "key `smcd_v2_ext`: present",
        ),
    ];
    for (json, needle) in &cases {
        assert_rejected(&encode(json), needle);
    }
}

#[test]
fn encode_ignores_derived_and_verdict_and_reads_arguments() {
    let json = edited("declined-proposal-no-eid.hex", |j| {
        j["derived"] = serde_json::json!({"anything": 1});
        j["server_verdict"]["name"] = "changed".into();
    });
    let from_arg = smcd(&["clc", "encode", &json], b"");
    assert_eq!(from_arg.code, 0, "{}", from_arg.stderr);
    let bytes = vector_bytes(&read(&vectors_dir().join("declined-proposal-no-eid.hex")));
    assert_eq!(from_arg.stdout.trim_end(), hex(&bytes));
}

#[test]
fn encode_warns_when_the_result_is_malformed() {
    // A trailer of zeros fits the schema but breaks rule H4.
    let json = edited("clc-accept-v1-smcd.hex", |j| {
        j["trailer"] = "00000000".into()
    });
    let run = encode(&json);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.trim_end().ends_with("00000000"));
    assert!(
        run.stderr
            .starts_with("warning: the encoded message is malformed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("rule H4"), "{}", run.stderr);
}
