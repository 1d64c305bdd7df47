package container

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// ImageRemoval says whether image id may go, for rmi (arg as the user gave
// it; byName: arg is one of its names, lastName: its only one), with
// docker's rules and messages: the last name of an image some container
// uses needs force, and then only that name goes (keep); an image deleted
// by ID cannot go while a container runs it, nor without force while a
// stopped one has it.
func (s *Store) ImageRemoval(id digest.Digest, arg string, byName, lastName, force bool) (keep bool, err error) {
	list, err := s.List()
	if err != nil {
		return false, err
	}
	var cs []*Container
	for _, c := range list {
		if c.Image == id {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return false, nil
	}
	short := id.Encoded()[:12]
	if byName {
		if lastName && !force {
			return true, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", arg, cs[0].ShortID(), short)
		}
		return true, nil
	}
	for _, c := range cs {
		if c.State.Running || c.State.Restarting {
			return true, fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, c.ShortID())
		}
	}
	if !force {
		return true, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, cs[0].ShortID())
	}
	return false, nil
}
