document.addEventListener('DOMContentLoaded', function () {
  var button = document.getElementById('toggle');
  var panel = document.querySelector('.panel');
  button.addEventListener('click', function (event) {
    event.preventDefault();
    panel.classList.toggle('open');
    button.textContent = panel.classList.contains('open') ? 'Hide' : 'Show';
  });
});
