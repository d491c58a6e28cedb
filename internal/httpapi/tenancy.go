package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/tenancy"
)

type signupInput struct {
	Body struct {
		OrgName     string `json:"orgName" minLength:"1" maxLength:"200"`
		Email       string `json:"email" format:"email" maxLength:"254"`
		Password    string `json:"password" minLength:"8" maxLength:"72"`
		DisplayName string `json:"displayName" minLength:"1" maxLength:"200"`
	}
}

type signupOutput struct {
	Body struct {
		OrgID       string    `json:"orgId" format:"uuid"`
		UserID      string    `json:"userId" format:"uuid"`
		AccessToken string    `json:"accessToken"`
		ExpiresAt   time.Time `json:"expiresAt"`
	}
}

type loginInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"254"`
		Password string `json:"password" maxLength:"1024"`
	}
}

type loginOutput struct {
	Body struct {
		AccessToken string    `json:"accessToken"`
		ExpiresAt   time.Time `json:"expiresAt"`
	}
}

type userBody struct {
	ID          string   `json:"id" format:"uuid"`
	Email       string   `json:"email"`
	DisplayName string   `json:"displayName"`
	Role        string   `json:"role" enum:"ADMIN,MANAGER"`
	PropertyIDs []string `json:"propertyIds"`
	Disabled    bool     `json:"disabled"`
}

type createUserInput struct {
	Body struct {
		Email       string   `json:"email" format:"email" maxLength:"254"`
		Password    string   `json:"password" minLength:"8" maxLength:"72"`
		DisplayName string   `json:"displayName" minLength:"1" maxLength:"200"`
		Role        string   `json:"role" enum:"ADMIN,MANAGER"`
		PropertyIDs []string `json:"propertyIds,omitempty" maxItems:"10000" uniqueItems:"true"`
	}
}

type userOutput struct {
	Body userBody
}

type setPropertiesInput struct {
	ID   string `path:"id" format:"uuid"`
	Body struct {
		PropertyIDs []string `json:"propertyIds" maxItems:"10000"`
	}
}

type setPropertiesOutput struct {
	Body struct {
		ID          string   `json:"id" format:"uuid"`
		PropertyIDs []string `json:"propertyIds"`
	}
}

type propertyBody struct {
	ID       string `json:"id" format:"uuid"`
	Name     string `json:"name"`
	Type     string `json:"type" enum:"hotel,hostel,resort,apartment"`
	Timezone string `json:"timezone" example:"Asia/Kolkata"`
	Currency string `json:"currency" example:"INR"`
}

type createPropertyInput struct {
	Body struct {
		Name     string `json:"name" minLength:"1" maxLength:"200"`
		Type     string `json:"type" enum:"hotel,hostel,resort,apartment"`
		Timezone string `json:"timezone,omitempty" maxLength:"64" doc:"IANA time zone; default Asia/Kolkata"`
		Currency string `json:"currency,omitempty" pattern:"^[A-Z]{3}$" doc:"ISO 4217 code; default INR"`
	}
}

type propertyOutput struct {
	Body propertyBody
}

type propertiesOutput struct {
	Body struct {
		Items []propertyBody `json:"items"`
	}
}

// registerTenancy registers the routes of the tenancy service: sign-up
// and login, users, properties.
func (s *server) registerTenancy(api huma.API) {
	s.registerAuth(api)
	s.registerUsers(api)
	s.registerProperties(api)
}

// registerAuth registers the anonymous routes that hand out access tokens.
func (s *server) registerAuth(api huma.API) {
	register(api, s.help, huma.Operation{
		OperationID: "signup", Method: http.MethodPost, Path: "/v1/auth/signup", Tags: []string{"auth"},
		Summary: "Create an organization and its first ADMIN", DefaultStatus: http.StatusCreated,
		Errors: []int{400, 409, 422, 429},
	}, func(ctx context.Context, in *signupInput) (*signupOutput, error) {
		org, user, err := s.Tenancy.Signup(ctx, tenancy.SignupInput{OrgName: in.Body.OrgName, Email: in.Body.Email,
			Password: in.Body.Password, DisplayName: in.Body.DisplayName})
		if err != nil {
			return nil, err
		}
		token, exp, err := s.Tokens.Issue(domain.Actor{OrgID: org.ID, UserID: user.ID, Role: user.Role})
		if err != nil {
			return nil, err
		}
		out := &signupOutput{}
		out.Body.OrgID, out.Body.UserID, out.Body.AccessToken, out.Body.ExpiresAt = org.ID.String(), user.ID.String(), token, exp
		return out, nil
	})

	register(api, s.help, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/v1/auth/login", Tags: []string{"auth"},
		Summary: "Exchange email and password for an access token", Errors: []int{400, 401, 422, 429},
	}, func(ctx context.Context, in *loginInput) (*loginOutput, error) {
		if err := s.limitLogin(ctx, in.Body.Email); err != nil {
			return nil, err
		}
		user, err := s.Tenancy.Authenticate(ctx, in.Body.Email, in.Body.Password)
		if err != nil {
			return nil, err
		}
		token, exp, err := s.Tokens.Issue(domain.Actor{OrgID: user.OrgID, UserID: user.ID, Role: user.Role})
		if err != nil {
			return nil, err
		}
		out := &loginOutput{}
		out.Body.AccessToken, out.Body.ExpiresAt = token, exp
		return out, nil
	})
}

// registerUsers registers the ADMIN's routes that add users and assign
// them properties.
func (s *server) registerUsers(api huma.API) {
	h := s.help
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "createUser", Method: http.MethodPost, Path: "/v1/users", Tags: []string{"users"},
		Summary: "Add a user to the caller's organization (ADMIN)", DefaultStatus: http.StatusCreated,
		Errors: []int{400, 401, 403, 404, 409, 422},
	})), func(ctx context.Context, in *createUserInput) (*userOutput, error) {
		ids, err := parseIDs("body.propertyIds", in.Body.PropertyIDs)
		if err != nil {
			return nil, err
		}
		u, err := s.Tenancy.CreateUser(ctx, h.Actor(ctx), tenancy.CreateUserInput{Email: in.Body.Email, Password: in.Body.Password,
			DisplayName: in.Body.DisplayName, Role: domain.Role(in.Body.Role), PropertyIDs: ids})
		if err != nil {
			return nil, err
		}
		return &userOutput{Body: toUserBody(u)}, nil
	})

	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "setUserProperties", Method: http.MethodPut, Path: "/v1/users/{id}/properties", Tags: []string{"users"},
		Summary: "Replace the properties a MANAGER is assigned to (ADMIN)", Errors: []int{400, 401, 403, 404, 422},
	})), func(ctx context.Context, in *setPropertiesInput) (*setPropertiesOutput, error) {
		id, err := parseID("path.id", in.ID)
		if err != nil {
			return nil, err
		}
		ids, err := parseIDs("body.propertyIds", in.Body.PropertyIDs)
		if err != nil {
			return nil, err
		}
		u, err := s.Tenancy.SetUserProperties(ctx, h.Actor(ctx), id, ids)
		if err != nil {
			return nil, err
		}
		out := &setPropertiesOutput{}
		out.Body.ID, out.Body.PropertyIDs = u.ID.String(), idStrings(u.PropertyIDs)
		return out, nil
	})
}

// registerProperties registers the routes that add and list properties.
func (s *server) registerProperties(api huma.API) {
	h := s.help
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "createProperty", Method: http.MethodPost, Path: "/v1/properties", Tags: []string{"properties"},
		Summary: "Add a property (ADMIN)", DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 403, 422},
	})), func(ctx context.Context, in *createPropertyInput) (*propertyOutput, error) {
		p, err := s.Tenancy.CreateProperty(ctx, h.Actor(ctx), tenancy.PropertyInput{Name: in.Body.Name, Type: in.Body.Type,
			Timezone: in.Body.Timezone, Currency: in.Body.Currency})
		if err != nil {
			return nil, err
		}
		return &propertyOutput{Body: toPropertyBody(p)}, nil
	})

	register(api, s.help, Secured(huma.Operation{
		OperationID: "listProperties", Method: http.MethodGet, Path: "/v1/properties", Tags: []string{"properties"},
		Summary: "Properties the caller may see (a MANAGER: the assigned ones)", Errors: []int{401},
	}), func(ctx context.Context, _ *struct{}) (*propertiesOutput, error) {
		props, err := s.Tenancy.Properties(ctx, h.Actor(ctx))
		if err != nil {
			return nil, err
		}
		out := &propertiesOutput{}
		out.Body.Items = make([]propertyBody, len(props))
		for i, p := range props {
			out.Body.Items[i] = toPropertyBody(p)
		}
		return out, nil
	})
}

func toUserBody(u tenancy.User) userBody {
	return userBody{ID: u.ID.String(), Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role), PropertyIDs: idStrings(u.PropertyIDs), Disabled: u.Disabled}
}

func toPropertyBody(p tenancy.Property) propertyBody {
	return propertyBody{ID: p.ID.String(), Name: p.Name, Type: p.Type, Timezone: p.Timezone, Currency: p.Currency}
}

func parseID(location, s string) (domain.ID, error) {
	id, err := domain.ParseID(s)
	if err != nil {
		return domain.ID{}, domain.Invalid(location, "must be a UUID", s)
	}
	return id, nil
}

func parseIDs(location string, ss []string) ([]domain.ID, error) {
	ids := make([]domain.ID, 0, len(ss))
	v := &domain.ValidationError{}
	for _, s := range ss {
		id, err := domain.ParseID(s)
		if err != nil {
			v.Add(location, "must hold UUIDs", s)
			continue
		}
		ids = append(ids, id)
	}
	return ids, v.Err()
}

func idStrings(ids []domain.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
