//! One conformance suite for every backend: call [`run`] with a fresh, empty store.
//! It panics with a description of the first broken contract.

use crate::Store;

pub fn run(store: &dyn Store) {
    store.prepare().expect("prepare");
    store.prepare().expect("prepare is idempotent");
    assert!(store.list("data").expect("list of an empty prefix").is_empty(), "fresh store lists nothing");

    let err = store.read("data/00/missing", None).expect_err("missing object");
    assert!(err.is_not_found(), "reading a missing object is NotFound, got {err}");

    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    store.write("data/ab/abcdef", &body).expect("write");
    store.write("index/0123", b"index").expect("write");
    store.write("config", b"{}").expect("write at top level");

    assert_eq!(store.read("data/ab/abcdef", None).unwrap(), body, "whole read");
    assert_eq!(store.read("data/ab/abcdef", Some(10..20)).unwrap(), &body[10..20], "ranged read");
    assert_eq!(store.read("data/ab/abcdef", Some(99_990..100_000)).unwrap(), &body[99_990..], "tail read");
    assert!(store.read("data/ab/abcdef", Some(99_990..100_010)).is_err(), "read past the end fails");
    assert_eq!(store.size("data/ab/abcdef").unwrap(), 100_000);

    let listed = store.list("data").unwrap();
    assert_eq!(listed.len(), 1, "list is per prefix: {listed:?}");
    assert_eq!(listed[0].name, "data/ab/abcdef");
    assert_eq!(listed[0].size, 100_000);

    store.write("data/ab/abcdef", &body).expect("rewriting identical bytes");

    assert!(store.write_new("config", b"second").is_ok_and(|created| !created), "write_new keeps an existing object");
    assert_eq!(store.read("config", None).unwrap(), b"{}");
    let winners: usize = std::thread::scope(|s| {
        let racers: Vec<_> =
            (0..4).map(|i| s.spawn(move || store.write_new("race", format!("{i}").as_bytes()).unwrap())).collect();
        racers.into_iter().map(|r| r.join().unwrap() as usize).sum()
    });
    assert_eq!(winners, 1, "exactly one of several racing write_new calls creates the object");
    store.remove("race").unwrap();
    store.remove("data/ab/abcdef").expect("remove");
    store.remove("data/ab/abcdef").expect("remove is idempotent");
    assert!(store.list("data").unwrap().is_empty(), "removed objects are not listed");
    assert!(store.write("../escape", b"x").is_err(), "names may not climb out");

    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in 0..10 {
                    store.write(&format!("snapshots/{t}-{i}"), format!("{t}{i}").as_bytes()).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list("snapshots").unwrap().len(), 40, "concurrent writers all land");
    for o in store.list("snapshots").unwrap() {
        store.remove(&o.name).unwrap();
    }
    store.remove("index/0123").unwrap();
    store.remove("config").unwrap();
}
