package btc

import (
	"context"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// fakeChain is a node's best chain in memory, for this package's unit
// tests only; the integration tests use a real btcd.
type fakeChain struct{ blocks []*wire.MsgBlock }

func (c *fakeChain) extend(n int, tag uint32) {
	for i := 0; i < n; i++ {
		b := &wire.MsgBlock{Header: wire.BlockHeader{Nonce: tag + uint32(len(c.blocks))}}
		if len(c.blocks) > 0 {
			b.Header.PrevBlock = c.blocks[len(c.blocks)-1].BlockHash()
		}
		c.blocks = append(c.blocks, b)
	}
}

func (c *fakeChain) BestBlock(context.Context) (chainhash.Hash, int32, error) {
	return c.blocks[len(c.blocks)-1].BlockHash(), int32(len(c.blocks) - 1), nil
}
func (c *fakeChain) BlockHash(_ context.Context, h int32) (chainhash.Hash, error) {
	return c.blocks[h].BlockHash(), nil
}
func (c *fakeChain) Block(_ context.Context, h chainhash.Hash) (*wire.MsgBlock, error) {
	for _, b := range c.blocks {
		if b.BlockHash() == h {
			return b, nil
		}
	}
	panic("unknown block")
}

func TestFollowerReorg(t *testing.T) {
	ctx := context.Background()
	c := &fakeChain{}
	c.extend(5, 0) // heights 0..4
	f := NewFollower(c, Checkpoint{}, 1)
	evs, err := f.Poll(ctx)
	if err != nil || len(evs) != 4 || evs[0].Height != 1 || evs[3].Height != 4 {
		t.Fatalf("first poll = %d events, %v", len(evs), err)
	}
	if evs, _ := f.Poll(ctx); len(evs) != 0 {
		t.Fatalf("poll at tip = %d events", len(evs))
	}
	// Replace heights 3 and 4 with a longer branch.
	old3, old4 := c.blocks[3].BlockHash(), c.blocks[4].BlockHash()
	c.blocks = c.blocks[:3]
	c.extend(3, 1000) // heights 3..5
	evs, err = f.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		conn bool
		h    int32
	}{{false, 4}, {false, 3}, {true, 3}, {true, 4}, {true, 5}}
	if len(evs) != len(want) {
		t.Fatalf("reorg events = %d; want %d", len(evs), len(want))
	}
	for i, w := range want {
		if evs[i].Connected != w.conn || evs[i].Height != w.h {
			t.Errorf("event %d = %v@%d; want %v@%d", i, evs[i].Connected, evs[i].Height, w.conn, w.h)
		}
	}
	if evs[0].Hash != old4 || evs[1].Hash != old3 {
		t.Error("disconnected the wrong blocks")
	}
	// Resume from a checkpoint: nothing new, then one more block.
	f2 := NewFollower(c, f.Checkpoint(), 1)
	if evs, _ := f2.Poll(ctx); len(evs) != 0 {
		t.Fatalf("resumed poll = %d events", len(evs))
	}
	c.extend(1, 0)
	if evs, _ := f2.Poll(ctx); len(evs) != 1 || evs[0].Height != 6 {
		t.Fatalf("resumed poll after a block = %+v", evs)
	}
	// A reorg that happened while the follower was down is unwound too.
	c.blocks = c.blocks[:5]
	c.extend(3, 2000)
	evs, _ = f2.Poll(ctx)
	if len(evs) != 2+3 || evs[0].Connected || evs[0].Height != 6 || evs[1].Height != 5 || !evs[2].Connected {
		t.Fatalf("reorg after resume: %d events", len(evs))
	}
}
