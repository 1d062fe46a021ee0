//! Decoded form pairs with bracket keys (`line_items[0][price]`, `expand[]`) folded into a
//! tree, the way Stripe's form decoder reads them.

/// A parameter's value: a plain string or a hash of nested keys in arrival order. A key
/// sent as `[]` (append to an array) is stored as the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Value(String),
    Hash(Vec<(String, Node)>),
}

/// A key that is both a plain value and a hash (`a=1&a[b]=2`): the path of the clash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clash(pub String);

/// `a[b][0][c]` → `["a", "b", "0", "c"]`; `expand[]` → `["expand", ""]`. A key whose
/// brackets do not parse is one literal name (then refused as an unknown parameter).
pub(crate) fn split_key(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    if open == 0 {
        return vec![key.to_owned()];
    }
    let mut parts = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return vec![key.to_owned()];
        };
        let Some(close) = inner.find(']') else {
            return vec![key.to_owned()];
        };
        let segment = &inner[..close];
        if segment.contains('[') {
            return vec![key.to_owned()];
        }
        parts.push(segment.to_owned());
        rest = &inner[close + 1..];
    }
    parts
}

/// Renders a parameter path the way Stripe names it: `line_items[0][price]`.
pub(crate) fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}[{segment}]")
    }
}

/// Folds the pairs into the top-level hash.
pub(crate) fn build(params: &[(String, String)]) -> Result<Vec<(String, Node)>, Clash> {
    let mut root = Vec::new();
    for (key, value) in params {
        insert(&mut root, "", &split_key(key), value)?;
    }
    Ok(root)
}

fn insert(
    hash: &mut Vec<(String, Node)>,
    path: &str,
    segments: &[String],
    value: &str,
) -> Result<(), Clash> {
    let Some((segment, rest)) = segments.split_first() else {
        return Ok(());
    };
    let here = join(path, segment);
    if rest.is_empty() {
        if segment.is_empty() {
            hash.push((String::new(), Node::Value(value.to_owned())));
            return Ok(());
        }
        return match hash.iter_mut().find(|(k, _)| k == segment) {
            // A repeated key: the last value wins, as in Stripe's decoder.
            Some((_, node @ Node::Value(_))) => {
                *node = Node::Value(value.to_owned());
                Ok(())
            }
            Some((_, Node::Hash(_))) => Err(Clash(here)),
            None => {
                hash.push((segment.clone(), Node::Value(value.to_owned())));
                Ok(())
            }
        };
    }
    if segment.is_empty() {
        // `a[][k]=v`: fill the last appended hash unless it already has `k`.
        let next = rest.first().map(String::as_str).unwrap_or_default();
        let reuse = matches!(
            hash.last(),
            Some((k, Node::Hash(children)))
                if k.is_empty() && !next.is_empty() && !children.iter().any(|(c, _)| c == next)
        );
        if !reuse {
            hash.push((String::new(), Node::Hash(Vec::new())));
        }
        return match hash.last_mut() {
            Some((_, Node::Hash(children))) => insert(children, &here, rest, value),
            _ => Err(Clash(here)),
        };
    }
    let index = match hash.iter().position(|(k, _)| k == segment) {
        Some(i) => i,
        None => {
            hash.push((segment.clone(), Node::Hash(Vec::new())));
            hash.len() - 1
        }
    };
    match hash.get_mut(index) {
        Some((_, Node::Hash(children))) => insert(children, &here, rest, value),
        _ => Err(Clash(here)),
    }
}
