//! A binary heap whose items are also found by key (upstream's `backend/heap`): activeQ and
//! backoffQ must remove or replace a pod in the middle when it is updated or deleted.

use std::collections::HashMap;
use std::sync::Arc;

/// Whether `a` comes out before `b`.
pub type Less<T> = Arc<dyn Fn(&T, &T) -> bool + Send + Sync>;

pub(crate) struct Heap<T> {
    items: Vec<(String, T)>,
    index: HashMap<String, usize>,
    less: Less<T>,
}

impl<T> Heap<T> {
    pub fn new(less: Less<T>) -> Heap<T> {
        Heap {
            items: Vec::new(),
            index: HashMap::new(),
            less,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.index.get(key).map(|&i| &self.items[i].1)
    }

    pub fn peek(&self) -> Option<&T> {
        self.items.first().map(|(_, t)| t)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, t)| t)
    }

    /// Inserts, or replaces the item with the same key and restores the order.
    pub fn add_or_update(&mut self, key: String, item: T) {
        if let Some(&i) = self.index.get(&key) {
            self.items[i].1 = item;
            self.fix(i);
            return;
        }
        let i = self.items.len();
        self.index.insert(key.clone(), i);
        self.items.push((key, item));
        self.up(i);
    }

    pub fn remove(&mut self, key: &str) -> Option<T> {
        let i = self.index.remove(key)?;
        let last = self.items.len() - 1;
        if i != last {
            self.items.swap(i, last);
            self.index.insert(self.items[i].0.clone(), i);
        }
        let (_, item) = self.items.pop()?;
        if i < self.items.len() {
            self.fix(i);
        }
        Some(item)
    }

    pub fn pop(&mut self) -> Option<T> {
        let key = self.items.first()?.0.clone();
        self.remove(&key)
    }

    fn before(&self, a: usize, b: usize) -> bool {
        (self.less)(&self.items[a].1, &self.items[b].1)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.items.swap(a, b);
        self.index.insert(self.items[a].0.clone(), a);
        self.index.insert(self.items[b].0.clone(), b);
    }

    fn fix(&mut self, i: usize) {
        if !self.up(i) {
            self.down(i);
        }
    }

    /// Moves item `i` towards the root; whether it moved.
    fn up(&mut self, mut i: usize) -> bool {
        let start = i;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.before(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
        i != start
    }

    fn down(&mut self, mut i: usize) {
        let n = self.items.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                return;
            }
            let right = left + 1;
            let child = if right < n && self.before(right, left) {
                right
            } else {
                left
            };
            if !self.before(child, i) {
                return;
            }
            self.swap(i, child);
            i = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap() -> Heap<i32> {
        Heap::new(Arc::new(|a: &i32, b: &i32| a < b))
    }

    #[test]
    fn pops_in_order_and_finds_by_key() {
        let mut h = heap();
        for (k, v) in [("a", 5), ("b", 1), ("c", 9), ("d", 3), ("e", 7)] {
            h.add_or_update(k.into(), v);
        }
        assert_eq!(h.get("c"), Some(&9));
        assert_eq!(h.peek(), Some(&1));
        // Update moves an item both ways; remove takes one from the middle.
        h.add_or_update("c".into(), 0);
        h.add_or_update("b".into(), 8);
        assert_eq!(h.remove("d"), Some(3));
        assert_eq!(h.remove("d"), None);
        assert!(!h.contains("d"));
        let mut out = Vec::new();
        while let Some(v) = h.pop() {
            out.push(v);
        }
        assert_eq!(out, [0, 5, 7, 8]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn stays_ordered_under_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut h = heap();
        let mut model = std::collections::BTreeMap::new();
        for _ in 0..5000 {
            let key = format!("k{}", rng.random_range(0..50));
            match rng.random_range(0..3) {
                0 | 1 => {
                    let v = rng.random_range(0..1000);
                    h.add_or_update(key.clone(), v);
                    model.insert(key, v);
                }
                _ => assert_eq!(h.remove(&key), model.remove(&key)),
            }
            assert_eq!(h.peek().copied(), model.values().min().copied());
            assert_eq!(h.len(), model.len());
        }
    }
}
