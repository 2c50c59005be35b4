count=0
while read -r line; do
  if [[ "$line" == *ERROR* ]]; then
    count=$((count + 1))
  fi
done < app.log
echo "errors: ${count}"
ps aux | grep -v grep | grep nginx | awk '{print $2}' | xargs -r kill
