for f in *.log; do
  if [ -s "$f" ]; then
    echo "compressing $f"
    gzip -9 "$f"
  else
    rm -f "$f"
  fi
done
