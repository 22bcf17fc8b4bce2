//! Lenient field readers for the state document: each accepts any JSON
//! value, reading numbers given as strings, wrong types as empty, and
//! skipping array elements that are not objects.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::Text;

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string, borrowed from the document when it holds no escapes;
/// numbers are taken in their decimal form, anything else is "".
pub(super) fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Text<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Text<'de>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
            Ok(Text::default())
        }
        fn visit_unit<E>(self) -> Result<Text<'de>, E> {
            Ok(Text::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
            drain_seq(seq).map(|()| Text::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
            drain_map(map).map(|()| Text::default())
        }
    }
    d.deserialize_any(V)
}

/// A string, as [`text`] reads it, owned.
pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d).map(Cow::into_owned)
}

/// A number; a numeric string is read as its number; anything else is 0.
pub(super) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(match Scalar::read(d)? {
        Scalar::Int(i) => i as f64,
        Scalar::Float(f) => f,
        Scalar::Text(s) => s.trim().parse().unwrap_or(0.0),
        Scalar::Bool(_) | Scalar::Other => 0.0,
    })
}

/// An integer; an integral float or numeric string is read as its integer;
/// anything else (a fraction, text) is `None`.
pub(super) fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Scalar::read(d)? {
        Scalar::Int(i) => Some(i),
        Scalar::Float(f) => float_to_int(f),
        Scalar::Text(s) => {
            let s = s.trim();
            s.parse().ok().or_else(|| s.parse().ok().and_then(float_to_int))
        }
        Scalar::Bool(_) | Scalar::Other => None,
    })
}

fn float_to_int(f: f64) -> Option<i64> {
    // The bounds keep the cast exact; fractions are not integers.
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// A boolean; anything else (a string, a number, absent) is `None`.
pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Scalar::read(d)? {
        Scalar::Bool(b) => Some(b),
        _ => None,
    })
}

/// Whether the field is an object (whatever it holds).
pub(super) fn is_object<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Obj::<IgnoredAny>::deserialize(d).map(|o| o.0.is_some())
}

/// Any JSON value, reduced to what number and flag readers care about.
enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Other,
}

impl Scalar {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq).map(|()| Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                drain_map(map).map(|()| Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// An object read as `T`, or `None` for any other JSON value.
pub(super) struct Obj<T>(pub(super) Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                drain_seq(seq).map(|()| Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object field; anything that is not an object reads as the default.
pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0.unwrap_or_default())
}

/// An array of objects; elements that are not objects are skipped, and a
/// value that is not an array reads as empty.
pub(super) fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    array(d, |Obj(item): Obj<T>| item)
}

/// Every element of an array, unparsed (a slice of the document); a value
/// that is not an array reads as empty.
pub(super) fn elements<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'de RawValue>, D::Error> {
    array(d, Some)
}

/// An array, each element read as `E` and kept where `keep` makes a `T`
/// of it; a value that is not an array reads as empty.
fn array<'de, D, E, T>(d: D, keep: fn(E) -> Option<T>) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    E: Deserialize<'de>,
{
    struct V<E, T>(fn(E) -> Option<T>);
    impl<'de, E: Deserialize<'de>, T> Visitor<'de> for V<E, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(element) = seq.next_element::<E>()? {
                if let Some(item) = (self.0)(element) {
                    if out.len() == out.capacity() {
                        // Double from 1, not from `Vec`'s minimum of 4: most
                        // of these arrays (statuses, network infos, addresses)
                        // hold one or two objects.
                        out.reserve_exact(out.len().max(1));
                    }
                    out.push(item);
                }
            }
            // A parsed state lives through generation: no slack.
            out.shrink_to_fit();
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            drain_map(map).map(|()| Vec::new())
        }
        fn visit_str<Er>(self, _: &str) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_bool<Er>(self, _: bool) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_i64<Er>(self, _: i64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_u64<Er>(self, _: u64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_f64<Er>(self, _: f64) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
        fn visit_unit<Er>(self) -> Result<Vec<T>, Er> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V(keep))
}

#[cfg(test)]
mod tests {
    use super::super::State;

    #[test]
    fn arrays_hold_no_slack() {
        // A parsed state lives through generation; `Vec`'s growth would
        // leave 3 empty slots in every one-element array.
        let statuses = |n: usize| {
            let status = r#"{"state":"TASK_RUNNING","timestamp":1}"#;
            let list = vec![status; n].join(",");
            let doc = format!(r#"{{"frameworks":[{{"tasks":[{{"statuses":[{list}]}}]}}]}}"#);
            let state = State::from_slice(doc.as_bytes()).unwrap();
            let task = state.frameworks[0].tasks.iter().next().unwrap();
            (task.statuses.len(), task.statuses.capacity(), state.frameworks.capacity())
        };
        assert_eq!(statuses(1), (1, 1, 1));
        assert_eq!(statuses(3), (3, 3, 1));
        assert_eq!(statuses(100), (100, 100, 1));
    }

    #[test]
    fn wrong_types_read_as_empty_and_bad_elements_are_skipped() {
        let doc = br#"{"leader": null, "slaves": [3, {"id": 7, "pid": null}, "x"],
            "frameworks": [{"name": ["x"], "tasks": {"a": 1}}, null,
              {"name": "m", "tasks": [{"id": "t", "statuses": [{"timestamp": "12.5"}],
                "resources": "nope", "discovery": {"ports": {"ports": [
                  {"number": 31000.0}, {"number": 1.5}, {"number": "80"}, {}]}}}]}]}"#;
        let s = State::from_slice(doc).unwrap();
        assert_eq!(s.leader, "");
        assert_eq!(s.slaves.len(), 1);
        assert_eq!(s.slaves[0].id, "7");
        assert_eq!(s.frameworks.len(), 2);
        assert_eq!(s.frameworks[0].name, "");
        let t = s.frameworks[1].tasks.iter().next().unwrap();
        assert_eq!(t.statuses[0].timestamp, 12.5);
        assert_eq!(t.resources.ports, "");
        let numbers: Vec<_> = t.discovery.ports.ports.iter().map(|p| p.number).collect();
        assert_eq!(numbers, vec![Some(31000), None, Some(80), Some(0)]);
    }
}
