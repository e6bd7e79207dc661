//! Retention per data class (docs/security.md, "Retention"): what retention does to a stored
//! document, and how it records what it took out of the append-only logs.
//!
//! The classes and their periods are the service's business; here are the pieces every
//! backend shares: erasing a closed transit's personal data in place (its row and its
//! `declare` input), and the runs of keys written to `retention_log` so an incremental
//! backup's restore takes out of its base what retention took after the base was made.

use serde_json::Value;

use crate::Result;

/// What an erased personal field reads afterwards.
pub const ERASED: &str = "[erased under retention]";

/// `retention_log.action` of rows deleted.
pub const DELETED: &str = "delete";
/// `retention_log.action` of rows whose personal data was erased in place.
pub const ERASED_IN_PLACE: &str = "erase";

/// Erases the driver's name and contact in a transit's JSON document (clear or sealed alike:
/// the sealed value is replaced, not opened). Says whether anything changed.
pub(crate) fn erase_transit(doc: &mut Value) -> bool {
    let Some(driver) = doc.get_mut("driver").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = driver.remove("contact").is_some();
    if driver.get("name").and_then(Value::as_str) != Some(ERASED) && driver.contains_key("name") {
        driver.insert("name".to_owned(), Value::String(ERASED.to_owned()));
        changed = true;
    }
    changed
}

/// Erases the personal data of a stored transit row's document; `None` if nothing changes.
pub(crate) fn erase_transit_doc(text: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(text)?;
    Ok(erase_transit(&mut doc).then(|| doc.to_string()))
}

/// Erases the personal data of a `declare` input's document; `None` if nothing changes.
pub(crate) fn erase_input_doc(text: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(text)?;
    let changed = doc.get_mut("transit").is_some_and(erase_transit);
    Ok(changed.then(|| doc.to_string()))
}

/// The ids as runs of consecutive integers `(first, last)`, in order: a run holds only ids
/// given, so deleting a run's whole range deletes exactly them.
pub(crate) fn runs(mut ids: Vec<i64>) -> Vec<(i64, i64)> {
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(id) => *last = id,
            _ => out.push((id, id)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_hold_only_the_ids_given() {
        assert_eq!(runs(vec![]), vec![]);
        assert_eq!(
            runs(vec![5, 3, 4, 9, 10, 12, 4]),
            vec![(3, 5), (9, 10), (12, 12)]
        );
        assert_eq!(
            runs(vec![i64::MAX, i64::MAX - 1]),
            vec![(i64::MAX - 1, i64::MAX)]
        );
    }

    #[test]
    fn erasing_takes_the_name_and_contact_and_nothing_else() {
        let doc = json!({
            "id": "T1",
            "driver": {"name": "Ivan Petrov", "contact": {"sealed": "xc20p:k1:00"}, "nationality": "KZ"},
            "cargo": [{"consignor": "ACME"}],
        })
        .to_string();
        let erased = erase_transit_doc(&doc).unwrap().unwrap();
        assert!(
            !erased.contains("Ivan") && !erased.contains("sealed"),
            "{erased}"
        );
        let v: Value = serde_json::from_str(&erased).unwrap();
        assert_eq!(v["driver"]["name"], ERASED);
        assert_eq!(v["driver"]["nationality"], "KZ");
        assert_eq!(v["cargo"][0]["consignor"], "ACME");
        // Twice is the same as once; a transit without a driver is left alone.
        assert_eq!(erase_transit_doc(&erased).unwrap(), None);
        assert_eq!(erase_transit_doc(r#"{"id":"T2"}"#).unwrap(), None);
        let input = json!({"kind": "declare", "transit": {"driver": {"name": "A B"}}}).to_string();
        let erased = erase_input_doc(&input).unwrap().unwrap();
        assert!(!erased.contains("A B"), "{erased}");
        assert_eq!(erase_input_doc(r#"{"kind":"tick"}"#).unwrap(), None);
    }
}
