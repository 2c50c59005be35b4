local config = {
  width = 800,
  height = 600,
  title = "demo",
}

for key, value in pairs(config) do
  if value ~= nil then
    print(key, value)
  end
end

local ok, err = pcall(require, "missing_module")
if not ok then print("error: " .. tostring(err)) end
