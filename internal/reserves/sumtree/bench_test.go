package sumtree

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user and system time so far: on a
// machine shared with other work the wall time of a run says less than
// the processor time it took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// customers is the size of the benchmark's tree: 1.7 million customers.
const customers = 1_700_000

// BenchmarkLiabilitiesBuild builds the tree of 1.7 million leaves (order,
// hashes, sums) from leaves whose salts are already drawn.
func BenchmarkLiabilitiesBuild(b *testing.B) {
	ls := randomLeaves(customers, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := Build(ls, "BTC", 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/tree")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tree")
}

// BenchmarkProofGenerate makes (and encodes) one customer's proof in the
// 1.7-million-leaf tree; BenchmarkProofVerify checks one.
func BenchmarkProofGenerate(b *testing.B) {
	tr, err := Build(randomLeaves(customers, 2), "BTC", 1, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := tr.Prove(uint64(i*7919) % customers)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProofVerify(b *testing.B) {
	p, _ := validProof(b, customers, 123_456)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}
