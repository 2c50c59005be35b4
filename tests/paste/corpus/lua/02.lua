local Player = {}
Player.__index = Player

function Player.new(name, hp)
  local self = setmetatable({}, Player)
  self.name = name
  self.hp = hp or 100
  return self
end

function Player:damage(amount)
  self.hp = self.hp - amount
  if self.hp <= 0 then
    print(self.name .. " has fallen")
  end
end
