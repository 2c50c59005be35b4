-- love2d main loop
function love.load()
  x, y = 100, 100
  speed = 200
end

function love.update(dt)
  if love.keyboard.isDown("right") then
    x = x + speed * dt
  elseif love.keyboard.isDown("left") then
    x = x - speed * dt
  end
end

function love.draw()
  love.graphics.rectangle("fill", x, y, 50, 50)
end
