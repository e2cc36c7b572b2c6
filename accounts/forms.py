from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from .models import User
from .services import BANNED_MESSAGE, is_user_banned


class SignUpForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email")


class RefuseBannedLogin:
    """A banned user's right password still does not sign them in: they are told why and
    how to appeal (inactive accounts are refused by Django before this)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if is_user_banned(user):
            raise ValidationError(BANNED_MESSAGE, code="banned")


class LoginForm(RefuseBannedLogin, AuthenticationForm):
    pass


class AdminLoginForm(RefuseBannedLogin, AdminAuthenticationForm):
    pass
