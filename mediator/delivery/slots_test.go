package delivery

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkSlotsContended is a target's delivery consumer while the target works: its
// MaxConcurrency workers all want one of 4 slots, and each holder frees its slot as soon as
// it has run. cpu-ns/op is the CPU an acquire and a release cost with every other worker
// waiting: what each request pays on top of the request itself.
func BenchmarkSlotsContended(b *testing.B) {
	s := newSlots(4, prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"}))
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan struct{}, MaxConcurrency)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for range MaxConcurrency {
		wg.Go(func() {
			for range work {
				if err := s.acquire(ctx); err != nil {
					b.Error(err)
					return
				}
				runtime.Gosched() // hold the slot while others run
				s.release()
			}
		})
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time this process used so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSlotsHandAFreedSlotToOneWaiter: workers waiting for a slot get one each as slots free
// or the limit rises, longest waiting first, and only as many as there are slots.
func TestSlotsHandAFreedSlotToOneWaiter(t *testing.T) {
	s := newSlots(1, prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"}))
	if err := s.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, 4)
	for i := range 4 {
		go func() {
			if s.acquire(ctx) == nil {
				got <- i
			}
		}()
		waitQueued(s, i+1) // queued before the next one, so that the order is known
	}
	s.release()
	if i := <-got; i != 0 {
		t.Fatalf("worker %d got the freed slot, want 0 (waiting longest)", i)
	}
	s.resize(3) // two more slots: the next two workers
	if a, b := <-got, <-got; a+b != 1+2 {
		t.Fatalf("workers %d and %d got the new slots, want 1 and 2", a, b)
	}
	select {
	case i := <-got:
		t.Fatalf("worker %d got a slot with none free", i)
	default:
	}
	cancel() // worker 3 stops waiting and leaves the queue
	waitQueued(s, 0)
	if used := s.inUse(); used != 3 {
		t.Fatalf("%d slots in use, want 3", used)
	}
}

// TestSlotsPassOnASlotHandedToAWorkerThatStopped: a worker whose wait ends as a slot is
// handed to it gives the slot to the next worker, so no slot is lost; whichever comes
// first, the end of its wait or the slot, the next worker holds the slot.
func TestSlotsPassOnASlotHandedToAWorkerThatStopped(t *testing.T) {
	for range 200 {
		s := newSlots(1, prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"}))
		if err := s.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		first, next := make(chan error, 1), make(chan error, 1)
		go func() { first <- s.acquire(ctx) }()
		waitQueued(s, 1)
		go func() { next <- s.acquire(context.Background()) }()
		waitQueued(s, 2)
		cancel()
		s.release() // the slot goes to the first worker, whose wait is ending
		if err := <-first; err == nil {
			t.Fatal("a worker whose wait ended got a slot")
		}
		select {
		case err := <-next:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the slot handed to a worker that stopped waiting was lost: the next worker never got it")
		}
		if used := s.inUse(); used != 1 {
			t.Fatalf("%d slots in use, want 1 (the next worker's)", used)
		}
	}
}

// waitQueued waits until n workers wait for a slot of s.
func waitQueued(s *slots, n int) {
	for {
		s.mu.Lock()
		k := len(s.waiting)
		s.mu.Unlock()
		if k == n {
			return
		}
		runtime.Gosched()
	}
}

// inUse is the number of slots held.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}
