package container

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"regexp"
	"sync"
)

// validName is Docker's container name pattern.
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

var (
	nameLeft = []string{
		"admiring", "bold", "brave", "clever", "dazzling", "eager", "elegant", "festive", "gentle", "happy",
		"jolly", "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "tender", "vibrant",
	}
	nameRight = []string{
		"albattani", "babbage", "curie", "darwin", "euclid", "fermi", "galileo", "hopper", "johnson", "kepler",
		"lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "shannon", "thompson", "turing", "wozniak",
	}
)

func randomName() string {
	pick := func(l []string) string {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(l))))
		if err != nil {
			return l[0]
		}
		return l[n.Int64()]
	}
	return pick(nameLeft) + "_" + pick(nameRight)
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
