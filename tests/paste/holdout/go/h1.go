package store

import "errors"

var ErrNotFound = errors.New("not found")

type Store struct {
	items map[string][]byte
}

func New() *Store {
	return &Store{items: make(map[string][]byte)}
}

func (s *Store) Get(key string) ([]byte, error) {
	v, ok := s.items[key]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}
