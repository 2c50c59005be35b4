local function split(s, sep)
  local parts = {}
  for piece in string.gmatch(s, "([^" .. sep .. "]+)") do
    table.insert(parts, piece)
  end
  return parts
end

local words = split("alpha,beta,gamma", ",")
print(#words, words[2])
