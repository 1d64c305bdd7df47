package container

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// The journal reader takes whole lines only: a line being written is read
// once it is complete, and Since/Until select by time.
func TestEventsJournal(t *testing.T) {
	s := NewStore(t.TempDir())
	t0 := time.Now()
	for i, action := range []string{"create", "start", "die"} {
		e := Event{Type: "container", Action: action, TimeNano: t0.Add(time.Duration(i) * time.Second).UnixNano()}
		if err := s.appendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(s.EventsPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	partial := `{"Type":"container","Action":"destroy","timeNano":` // not finished yet
	if _, err := f.WriteString(partial); err != nil {
		t.Fatal(err)
	}
	var got []string
	collect := func(e Event) error { got = append(got, e.Action); return nil }
	err = s.Events(context.Background(), EventsOptions{Since: t0.Add(500 * time.Millisecond), Until: t0.Add(10 * time.Second)}, collect)
	if err != nil || len(got) != 2 || got[0] != "start" || got[1] != "die" {
		t.Fatalf("since/until: %v %v", got, err)
	}

	// Following: the partial line is delivered once finished.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got = nil
	done := make(chan error, 1)
	seen := make(chan struct{}, 4)
	go func() {
		done <- s.Events(ctx, EventsOptions{Since: t0.Add(2500 * time.Millisecond), Follow: true}, func(e Event) error {
			got = append(got, e.Action)
			seen <- struct{}{}
			return nil
		})
	}()
	if _, err := f.WriteString(strconv.FormatInt(t0.Add(3*time.Second).UnixNano(), 10) + "}\n"); err != nil {
		t.Fatal(err)
	}
	<-seen
	cancel()
	if err := <-done; err != nil || len(got) != 1 || got[0] != "destroy" {
		t.Fatalf("follow: %v %v", got, err)
	}
}
