package ledger

import "unsafe"

// chunkBits sets the size of a chunk: 2^16 elements.
const chunkBits = 16

const chunkLen = 1 << chunkBits

// chunked is an append-only list stored in fixed-size chunks, so that it
// grows without ever copying what it holds: a growing slice of a hundred
// million transfers would copy gigabytes at each doubling.
type chunked[T any] struct {
	chunks [][]T
	n      int
}

func (c *chunked[T]) len() int { return c.n }

// at returns a pointer to element i, valid until the list is truncated.
func (c *chunked[T]) at(i int) *T { return &c.chunks[i>>chunkBits][i&(chunkLen-1)] }

func (c *chunked[T]) append(v T) {
	ci := c.n >> chunkBits
	if ci == len(c.chunks) {
		c.chunks = append(c.chunks, make([]T, chunkLen))
	}
	c.chunks[ci][c.n&(chunkLen-1)] = v
	c.n++
}

// extend adds one element and returns it to be written in place: the
// hot path's append, without passing a large value by copy. Elements past
// the length are zero (new chunks are, and truncate zeroes what it drops).
func (c *chunked[T]) extend() *T {
	ci := c.n >> chunkBits
	if ci == len(c.chunks) {
		c.chunks = append(c.chunks, make([]T, chunkLen))
	}
	v := &c.chunks[ci][c.n&(chunkLen-1)]
	c.n++
	return v
}

// truncate drops the elements from n on; their chunks are kept for reuse.
func (c *chunked[T]) truncate(n int) {
	var zero T
	for i := n; i < c.n; i++ {
		*c.at(i) = zero
	}
	c.n = n
}

// reserve allocates the chunks for n elements in all and touches their
// memory, so that the operating system maps it now rather than page by page
// on the hot path (TigerBeetle allocates everything at start for the same
// reason).
func (c *chunked[T]) reserve(n int) {
	for len(c.chunks)<<chunkBits < n {
		ch := make([]T, chunkLen)
		b := unsafe.Slice((*byte)(unsafe.Pointer(&ch[0])), uintptr(chunkLen)*unsafe.Sizeof(ch[0]))
		for i := 0; i < len(b); i += 4096 {
			b[i] = 0
		}
		c.chunks = append(c.chunks, ch)
	}
}
