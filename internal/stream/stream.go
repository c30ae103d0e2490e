// Package stream reads the core's journal stream (GET /v1/journal/raw):
// each entry as its encoded bytes behind a 4-byte big-endian length. The
// co-signer and a separate watcher follow the core with it and check every
// entry themselves (core.Replica).
package stream

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
)

// MaxEntry bounds one entry read from the stream.
const MaxEntry = 8 << 20

// WriteFrame writes one encoded entry as a frame.
func WriteFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// ReadFrames calls fn with each frame of r until r ends.
func ReadFrames(r io.Reader, fn func([]byte) error) (int, error) {
	br := bufio.NewReader(r)
	n := 0
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > MaxEntry {
			return n, fmt.Errorf("stream: frame of %d bytes", size)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return n, err
		}
		if err := fn(b); err != nil {
			return n, err
		}
		n++
	}
}

// Pull asks the core at base for the entries from seq from on, with the
// stream token, and calls fn with each. It returns how many it read.
func Pull(ctx context.Context, client *http.Client, base, token string, from uint64, fn func([]byte) error) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/journal/raw?from=%d", base, from), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("stream: journal stream: %s", res.Status)
	}
	return ReadFrames(res.Body, fn)
}
