package statuspage

// lru is a map of at most max entries that drops the least recently used
// one when full. Not safe for concurrent use.
type lru[K comparable, V any] struct {
	max  int
	m    map[K]*lruItem[K, V]
	root lruItem[K, V] // root.next is the most recently used, root.prev the least
}

type lruItem[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruItem[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	c := &lru[K, V]{max: max, m: map[K]*lruItem[K, V]{}}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

// get returns the value of k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	it := c.m[k]
	if it == nil {
		var zero V
		return zero, false
	}
	c.unlink(it)
	c.front(it)
	return it.val, true
}

// put sets the value of k, marks it used, and drops the least recently
// used entry beyond max.
func (c *lru[K, V]) put(k K, v V) {
	if it := c.m[k]; it != nil {
		it.val = v
		c.unlink(it)
		c.front(it)
		return
	}
	it := &lruItem[K, V]{key: k, val: v}
	c.m[k] = it
	c.front(it)
	for len(c.m) > c.max {
		old := c.root.prev
		c.unlink(old)
		delete(c.m, old.key)
	}
}

func (c *lru[K, V]) len() int { return len(c.m) }

// clear drops every entry.
func (c *lru[K, V]) clear() {
	clear(c.m)
	c.root.prev, c.root.next = &c.root, &c.root
}

func (c *lru[K, V]) unlink(it *lruItem[K, V]) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
}

func (c *lru[K, V]) front(it *lruItem[K, V]) {
	it.prev, it.next = &c.root, c.root.next
	c.root.next.prev = it
	c.root.next = it
}
