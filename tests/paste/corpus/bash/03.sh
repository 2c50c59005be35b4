usage() {
  echo "usage: $0 [-v] HOST" >&2
  exit 1
}

while getopts "v" opt; do
  case $opt in
    v) VERBOSE=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
ping -c 1 "$1" > /dev/null 2>&1 && echo "up" || echo "down"
