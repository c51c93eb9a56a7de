//! Unit tests of node ids and the data directory's identity, in temporary
//! directories: create, reopen, each mismatch, corrupt files, single-box data.

use super::*;

fn identity(cluster: &str, node: &str, partitions: u32) -> DataDirIdentity {
    DataDirIdentity {
        cluster: cluster.to_owned(),
        node_id: NodeId::new(node).unwrap(),
        partitions: PartitionCount::new(partitions).unwrap(),
    }
}

fn prod() -> DataDirIdentity {
    identity("prod-eu", "node-a", 64)
}

/// The reason `check_or_create` found the identity file corrupt.
fn corrupt_reason(text: &[u8]) -> CorruptReason {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(IDENTITY_FILE), text).unwrap();
    match check_or_create(dir.path(), &prod()) {
        Err(IdentityError::Corrupt { path, reason }) => {
            assert_eq!(path, dir.path().join(IDENTITY_FILE));
            reason
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
    }
}

#[test]
fn names_follow_the_rules() {
    for good in ["a", "node-1", "0", "a-", "n".repeat(NODE_ID_LEN_MAX).as_str()] {
        assert_eq!(NodeId::new(good).unwrap().as_str(), good);
    }
    assert_eq!(NodeId::new(""), Err(NameError::Empty));
    assert_eq!(NodeId::new(&"n".repeat(65)), Err(NameError::TooLong { len: 65 }));
    assert_eq!(NodeId::new("-a"), Err(NameError::LeadingHyphen));
    assert_eq!(NodeId::new("Node"), Err(NameError::BadByte { at: 0, byte: b'N' }));
    assert_eq!(NodeId::new("a b"), Err(NameError::BadByte { at: 1, byte: b' ' }));
    assert_eq!(NodeId::new("a_b"), Err(NameError::BadByte { at: 1, byte: b'_' }));
    assert_eq!(NodeId::new("a\n"), Err(NameError::BadByte { at: 1, byte: b'\n' }));
    assert_eq!(NodeId::new("né"), Err(NameError::BadByte { at: 1, byte: 0xc3 }));
    assert_eq!(NodeId::new("a.b"), Err(NameError::BadByte { at: 1, byte: b'.' }));
    assert_eq!("node-b".parse::<NodeId>().unwrap().to_string(), "node-b");
}

#[test]
fn the_file_text_round_trips_and_tolerates_layout() {
    let text = prod().to_text();
    assert!(text.contains("\ncluster=prod-eu\nnode_id=node-a\npartitions=64\n"), "{text}");
    assert_eq!(DataDirIdentity::parse(&text), Ok(prod()));
    let loose = "\n  # hand-made\npartitions = 64\r\n node_id=node-a\ncluster=prod-eu \nformat=1";
    assert_eq!(DataDirIdentity::parse(loose), Ok(prod()));
}

#[test]
fn first_start_creates_the_file_and_a_restart_accepts_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data").join("node-a");
    check_or_create(&dir, &prod()).unwrap();
    let written = fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap();
    assert_eq!(written, prod().to_text());
    assert!(!dir.join(IDENTITY_TEMP_FILE).exists(), "the temporary file is renamed");
    assert_eq!(read(&dir).unwrap(), Some(prod()));
    check_or_create(&dir, &prod()).unwrap();
    assert_eq!(fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap(), written, "unchanged");
    // The store opens beside it and, once it has, a restart still passes.
    drop(crate::store::Store::open(&dir, 1).unwrap());
    check_or_create(&dir, &prod()).unwrap();
}

#[test]
fn a_directory_with_other_files_only_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("lost+found")).unwrap();
    fs::write(dir.path().join("README"), "operator notes").unwrap();
    fs::write(dir.path().join(IDENTITY_TEMP_FILE), "half a file").unwrap();
    check_or_create(dir.path(), &prod()).unwrap();
    assert_eq!(read(dir.path()).unwrap(), Some(prod()));
}

#[test]
fn each_mismatch_names_the_field_and_both_values() {
    let dir = tempfile::tempdir().unwrap();
    check_or_create(dir.path(), &prod()).unwrap();
    let cases = [
        (identity("prod-us", "node-a", 64), IdentityField::Cluster, "prod-eu", "prod-us"),
        (identity("prod-eu", "node-b", 64), IdentityField::NodeId, "node-a", "node-b"),
        (identity("prod-eu", "node-a", 16), IdentityField::Partitions, "64", "16"),
        // Several differ: the cluster is named first.
        (identity("other", "node-b", 16), IdentityField::Cluster, "prod-eu", "other"),
    ];
    for (asked, expected_field, expected_stored, expected_asked) in cases {
        match check_or_create(dir.path(), &asked) {
            Err(error @ IdentityError::Mismatch { .. }) => {
                let message = error.to_string();
                let IdentityError::Mismatch { dir: at, field, stored, asked } = error else {
                    unreachable!()
                };
                assert_eq!((at.as_path(), field), (dir.path(), expected_field));
                assert_eq!((stored.as_str(), asked.as_str()), (expected_stored, expected_asked));
                assert!(message.contains(&format!("'{expected_stored}'")), "{message}");
            }
            other => panic!("{asked:?}: {other:?}"),
        }
    }
    assert_eq!(read(dir.path()).unwrap(), Some(prod()), "a refusal never rewrites the file");
}

#[test]
fn single_box_data_without_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(crate::store::Store::open(dir.path(), 2).unwrap());
    match check_or_create(dir.path(), &prod()) {
        Err(IdentityError::SingleBoxData { dir: at, marker }) => {
            assert_eq!(at, dir.path());
            assert_eq!(marker, "CURRENT");
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join(IDENTITY_FILE).exists());
    // A database missing its CURRENT still shows by its other files.
    for marker in ["IDENTITY", "LOCK", "MANIFEST-000005"] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(marker), "").unwrap();
        let refused = check_or_create(dir.path(), &prod());
        assert!(
            matches!(refused, Err(IdentityError::SingleBoxData { marker: ref m, .. }) if m == marker),
            "{refused:?}"
        );
    }
}

#[test]
fn corrupt_files_are_typed_errors() {
    let good = prod().to_text();
    assert_eq!(corrupt_reason(&[0xff, 0xfe]), CorruptReason::NotUtf8);
    assert_eq!(corrupt_reason(&vec![b'#'; IDENTITY_FILE_BYTES_MAX + 1]), CorruptReason::TooLarge);
    assert_eq!(corrupt_reason(b""), CorruptReason::MissingKey("format"));
    assert_eq!(corrupt_reason(b"garbage"), CorruptReason::NotKeyValue(1));
    assert_eq!(corrupt_reason(b"# c\n\nshards=4"), CorruptReason::UnknownKey(3));
    let twice = format!("{good}node_id=node-a\n");
    assert_eq!(corrupt_reason(twice.as_bytes()), CorruptReason::DuplicateKey("node_id"));
    let missing = good.replace("partitions=64\n", "");
    assert_eq!(corrupt_reason(missing.as_bytes()), CorruptReason::MissingKey("partitions"));
    let future = good.replace("format=1", "format=2");
    assert_eq!(corrupt_reason(future.as_bytes()), CorruptReason::UnsupportedFormat);
    let bad_node = good.replace("node_id=node-a", "node_id=Node A");
    assert_eq!(
        corrupt_reason(bad_node.as_bytes()),
        CorruptReason::BadName(IdentityField::NodeId, NameError::BadByte { at: 0, byte: b'N' })
    );
    let bad_cluster = good.replace("cluster=prod-eu", "cluster=");
    assert_eq!(
        corrupt_reason(bad_cluster.as_bytes()),
        CorruptReason::BadName(IdentityField::Cluster, NameError::Empty)
    );
    let bad_p = good.replace("partitions=64", "partitions=48");
    assert_eq!(
        corrupt_reason(bad_p.as_bytes()),
        CorruptReason::BadPartitions(PartitionError::NotPowerOfTwo { count: 48 })
    );
}

#[test]
fn a_bad_cluster_name_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut asked = prod();
    asked.cluster = "Prod EU".to_owned();
    let refused = check_or_create(dir.path(), &asked);
    let bad_byte = NameError::BadByte { at: 0, byte: b'P' };
    assert!(matches!(refused, Err(IdentityError::BadCluster(ref e)) if *e == bad_byte));
    assert!(!dir.path().join(IDENTITY_FILE).exists());
}

#[test]
fn an_unreadable_identity_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be cannot be read as one.
    fs::create_dir(dir.path().join(IDENTITY_FILE)).unwrap();
    let refused = check_or_create(dir.path(), &prod());
    assert!(matches!(refused, Err(IdentityError::Io { action: "read", .. })), "{refused:?}");
}
