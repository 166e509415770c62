//! Sizes for people, in IEC units (KiB, MiB, GiB): how every front end and every message
//! writes a number of bytes, so one backup has one size everywhere.

/// `512 B`, `1.5 KiB`, `71.2 MiB`.
pub fn iec(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_iec_and_the_room_check_says_them() {
        assert_eq!(super::iec(1), "1 B");
        assert_eq!(super::iec(60_000), "58.6 KiB");
        assert_eq!(super::iec(3 << 30), "3.0 GiB");
        let e = crate::EngineError::NoRoom { path: "/t".into(), need: 3 << 20, free: 1536 };
        assert!(e.to_string().contains("the restore writes 3.0 MiB and 1.5 KiB is free;"), "{e}");
    }
}
